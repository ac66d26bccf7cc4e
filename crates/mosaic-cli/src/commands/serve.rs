//! `mosaic serve` and `mosaic config show`: the gateway side of the binary.

use anyhow::Result;
use mosaic_gateway::{Config, LogFormat};

use crate::cli::{ConfigCommand, GatewayConfigArgs, LogFormatArg, ServeArgs};
use crate::commands::Ctx;

/// The effective configuration: file and environment, then these flags.
pub fn load_config(args: &GatewayConfigArgs) -> Result<Config> {
    let mut config = Config::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(dir) = &args.data_dir {
        config.data_dir = Some(dir.clone());
    }
    if let Some(url) = &args.database_url {
        config.database_url = Some(url.clone());
    }
    Ok(config)
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let mut config = load_config(&args.gateway)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(format) = args.log_format {
        config.log_format = match format {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    let telemetry = mosaic_gateway::telemetry::init(&config).map_err(anyhow::Error::msg)?;
    let served = mosaic_gateway::serve(config).await;
    // Spans still queued go out before the process ends (off the async threads: the
    // flush waits for the exporter, which runs on them).
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    served?;
    Ok(())
}

pub fn config(ctx: &Ctx, cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Show(args) => {
            let config = load_config(&args)?;
            if ctx.json {
                let shown: toml::Value = toml::from_str(&config.to_redacted_toml())?;
                crate::output::json(&shown)?;
            } else {
                print!("{}", config.to_redacted_toml());
            }
            Ok(())
        }
    }
}
