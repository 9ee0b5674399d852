//! The agent's line to systemd: the manager's D-Bus API on the system bus.
//!
//! fleet's agent polled systemd every second; this one subscribes and reads
//! a unit's properties only when systemd says they changed
//! (`PropertiesChanged` on unit objects) or after a daemon-reload (which
//! changes `LoadState` without a signal). Jobs are issued and not awaited
//! here: their results arrive as `JobRemoved` signals in the agent's loop, so
//! a unit that takes minutes to start (an image pull under
//! `TimeoutStartSec=0`) holds up nothing else.

use std::collections::HashMap;

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use zbus_systemd::systemd1::ManagerProxy;
use zbus_systemd::zbus::fdo::PropertiesProxy;
use zbus_systemd::zbus::message::Type;
use zbus_systemd::zbus::names::InterfaceName;
use zbus_systemd::zbus::{self, Connection, MatchRule, MessageStream, OwnedObjectPath, OwnedVariant};

const UNIT_IFACE: &str = "org.freedesktop.systemd1.Unit";
const SERVICE_IFACE: &str = "org.freedesktop.systemd1.Service";
const UNIT_PATHS: &str = "/org/freedesktop/systemd1/unit";

/// What systemd says of a unit, as the agent reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitProps {
    pub load: String,
    pub active: String,
    pub sub: String,
    /// The service's `Result` (`success`, `exit-code`, `timeout` ...);
    /// empty for other unit types.
    pub result: String,
    /// Hex `InvocationID` of the current run (empty when never started).
    pub invocation: String,
}

/// A job that ended: its unit and result (`done`, `failed`, `timeout`,
/// `dependency`, `canceled`, `skipped`).
#[derive(Debug, Clone)]
pub struct JobDone {
    pub unit: String,
    pub result: String,
}

/// A connection to the system manager, subscribed to its signals.
pub struct Systemd {
    conn: Connection,
    manager: ManagerProxy<'static>,
}

impl std::fmt::Debug for Systemd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Systemd").finish_non_exhaustive()
    }
}

/// What systemd, or the bus to it, said no to; the bus error is kept.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("cannot reach systemd over the system bus: {0} (the agent needs systemd as PID 1 and dbus)")]
    Bus(zbus::Error),
    /// A call (`what`: "start web.service", "Reload" ...) that failed.
    #[error("{}", call_message(.what, .err))]
    Call { what: String, err: zbus::Error },
}

fn call_message(what: &str, err: &zbus::Error) -> String {
    match err {
        zbus::Error::MethodError(_, Some(text), _) => format!("systemd refused to {what}: {text}"),
        other => format!("systemd: {what}: {other}"),
    }
}

fn bus_err(what: &str) -> impl Fn(zbus::Error) -> SystemdError + '_ {
    move |err| SystemdError::Call { what: what.to_owned(), err }
}

impl Systemd {
    /// Connects to the system bus and subscribes to the manager's signals.
    ///
    /// # Errors
    /// When there is no system bus or systemd does not answer (the agent
    /// needs systemd as PID 1 and dbus running).
    pub async fn connect() -> Result<Self, SystemdError> {
        let conn = Connection::system().await.map_err(SystemdError::Bus)?;
        let manager = ManagerProxy::new(&conn).await.map_err(bus_err("manager"))?;
        manager.subscribe().await.map_err(bus_err("Subscribe"))?;
        Ok(Self { conn, manager })
    }

    /// `daemon-reload`: systemd answers once the reload is done.
    ///
    /// # Errors
    /// systemd's error.
    pub async fn reload(&self) -> Result<(), SystemdError> {
        self.manager.reload().await.map_err(bus_err("Reload"))
    }

    /// Queues a start job (mode `replace`); its result comes as [`JobDone`].
    ///
    /// # Errors
    /// When systemd refuses the job (e.g. the unit failed to load).
    pub async fn start(&self, unit: &str) -> Result<(), SystemdError> {
        self.manager
            .start_unit(unit.to_owned(), "replace".to_owned())
            .await
            .map(drop)
            .map_err(|e| bus_error(unit, "start", e))
    }

    /// Queues a stop job (mode `replace`).
    ///
    /// # Errors
    /// When systemd refuses the job.
    pub async fn stop(&self, unit: &str) -> Result<(), SystemdError> {
        match self.manager.stop_unit(unit.to_owned(), "replace".to_owned()).await {
            Ok(_) => Ok(()),
            // Stopping what systemd does not know is already done.
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
            {
                Ok(())
            }
            Err(e) => Err(bus_error(unit, "stop", e)),
        }
    }

    /// Loads `unit` (or finds it loaded) and returns its object path.
    ///
    /// # Errors
    /// systemd's error.
    pub async fn load(&self, unit: &str) -> Result<OwnedObjectPath, SystemdError> {
        self.manager.load_unit(unit.to_owned()).await.map_err(|e| bus_error(unit, "load", e))
    }

    /// The unit's states, read from its object in one call (two for a service).
    ///
    /// # Errors
    /// systemd's error.
    pub async fn props(&self, path: &OwnedObjectPath) -> Result<UnitProps, SystemdError> {
        let proxy = PropertiesProxy::builder(&self.conn)
            .destination("org.freedesktop.systemd1")
            .path(path.clone())
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(bus_err("properties"))?;
        let unit = get_all(&proxy, UNIT_IFACE).await?;
        let text = |map: &HashMap<String, OwnedVariant>, key: &str| {
            map.get(key).and_then(|v| String::try_from(&**v).ok()).unwrap_or_default()
        };
        let invocation = unit
            .get("InvocationID")
            .and_then(|v| Vec::<u8>::try_from((**v).clone()).ok())
            .map(|id| id.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default();
        let id = text(&unit, "Id");
        let result = if id.ends_with(".service") {
            text(&get_all(&proxy, SERVICE_IFACE).await?, "Result")
        } else {
            String::new()
        };
        Ok(UnitProps {
            load: text(&unit, "LoadState"),
            active: text(&unit, "ActiveState"),
            sub: text(&unit, "SubState"),
            result,
            invocation,
        })
    }

    /// The manager's `SystemState` (`running`, `degraded`, `stopping` ...).
    ///
    /// # Errors
    /// systemd's error.
    pub async fn system_state(&self) -> Result<String, SystemdError> {
        self.manager.system_state().await.map_err(bus_err("SystemState"))
    }

    /// Object paths of units whose properties changed, as systemd signals them.
    ///
    /// The bus connection stops reading (method replies too) while any of its
    /// signal queues is full, so signals are drained by a task of their own
    /// into a channel the agent's loop reads when it can: a burst of signals
    /// during a daemon-reload never holds up the reload's own reply.
    ///
    /// # Errors
    /// When the match rule cannot be added.
    pub async fn changes(&self) -> Result<mpsc::UnboundedReceiver<OwnedObjectPath>, SystemdError> {
        let rule = MatchRule::builder()
            .msg_type(Type::Signal)
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .path_namespace(UNIT_PATHS)
            .build()
            .map_err(bus_err("match rule"))?;
        let stream = MessageStream::for_match_rule(rule, &self.conn, None)
            .await
            .map_err(bus_err("PropertiesChanged"))?;
        Ok(drain(stream.filter_map(|m| async move {
            let m = m.ok()?;
            let path = m.header().path()?.to_owned();
            Some(OwnedObjectPath::from(path))
        })))
    }

    /// Jobs as they end (drained like [`Systemd::changes`]).
    ///
    /// # Errors
    /// When the signal cannot be subscribed to.
    pub async fn jobs(&self) -> Result<mpsc::UnboundedReceiver<JobDone>, SystemdError> {
        let stream = self.manager.receive_job_removed().await.map_err(bus_err("JobRemoved"))?;
        Ok(drain(stream.filter_map(|s| async move {
            let args = s.args().ok()?;
            Some(JobDone { unit: args.unit().clone(), result: args.result().clone() })
        })))
    }
}

/// Polls `stream` for as long as the receiver lives, forwarding each item.
fn drain<T: Send + 'static>(stream: impl Stream<Item = T> + Send + 'static) -> mpsc::UnboundedReceiver<T> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    rx
}

async fn get_all(
    proxy: &PropertiesProxy<'_>,
    iface: &'static str,
) -> Result<HashMap<String, OwnedVariant>, SystemdError> {
    let name = InterfaceName::from_static_str(iface).map_err(bus_err("interface"))?;
    proxy
        .get_all(name)
        .await
        .map_err(|err| SystemdError::Call { what: format!("properties of {iface}"), err: err.into() })
}

/// systemd's own words for a refused job (`Unit x.service has a bad unit
/// file setting.`), with the unit and the operation.
fn bus_error(unit: &str, op: &str, err: zbus::Error) -> SystemdError {
    SystemdError::Call { what: format!("{op} {unit}"), err }
}
