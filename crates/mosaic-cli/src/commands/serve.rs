//! `mosaic serve` and `mosaic config show`: the gateway side of the binary.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use mosaic_gateway::{Config, LogFormat};

use crate::commands::Ctx;

/// Where the gateway's configuration comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct GatewayConfigArgs {
    /// Config file (default: $XDG_CONFIG_HOME/mosaic/gateway.toml when it exists).
    #[arg(long, env = "MOSAIC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (default: $XDG_DATA_HOME/mosaic).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER:PASS@HOST/DB (default: SQLite in the data directory).
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub gateway: GatewayConfigArgs,
    /// Address to listen on (default 127.0.0.1:8420).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective gateway configuration (secrets redacted).
    Show(GatewayConfigArgs),
}

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
