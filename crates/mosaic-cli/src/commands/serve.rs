//! `mosaic serve` and `mosaic config show`: the gateway side of the binary.

use anyhow::Result;
use mosaic_gateway::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

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

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("MOSAIC_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
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
    init_logging(config.log_format);
    mosaic_gateway::serve(config).await?;
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
