"""Drive Mosaic's OpenAI-compatible endpoint with the official `openai` SDK, as a
user's script would: a plain completion, a streamed one, and a tool call. Prints one
JSON object with what the SDK saw; the Rust test asserts on it."""

import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["MOSAIC_BASE_URL"], api_key=os.environ["MOSAIC_TOKEN"])
model = os.environ["MOSAIC_MODEL"]
out = {"sdk_version": openai.__version__}

plain = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "say hello"}], max_tokens=16
)
out["plain"] = {
    "content": plain.choices[0].message.content,
    "finish_reason": plain.choices[0].finish_reason,
    "prompt_tokens": plain.usage.prompt_tokens,
    "completion_tokens": plain.usage.completion_tokens,
}

text = []
usage = None
for chunk in client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "stream please"}],
    stream=True,
    stream_options={"include_usage": True},
):
    if chunk.usage is not None:
        usage = chunk.usage.completion_tokens
    for choice in chunk.choices:
        if choice.delta.content:
            text.append(choice.delta.content)
out["stream"] = {"content": "".join(text), "completion_tokens": usage}

tools = [{
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The current time in a time zone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}]
called = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "what time is it in UTC?"}], tools=tools
)
call = called.choices[0].message.tool_calls[0]
out["tool_call"] = {
    "finish_reason": called.choices[0].finish_reason,
    "name": call.function.name,
    "arguments": json.loads(call.function.arguments),
    "id": call.id,
}

try:
    client.chat.completions.create(model="no-such-route", messages=[{"role": "user", "content": "x"}])
    out["unknown_model"] = "no error"
except openai.NotFoundError as e:
    out["unknown_model"] = e.status_code

json.dump(out, sys.stdout)
