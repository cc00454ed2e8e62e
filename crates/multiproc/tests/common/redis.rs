//! A real redis-server for a test: started on a private Unix socket in a fresh directory (no TCP
//! port to clash), without persistence, and killed by its pid when dropped (or when the thread
//! that started it ends: it dies with its parent). On a machine without redis-server, the first
//! test installs Debian's package (the test command installs what it needs); if that fails, so do
//! the tests: never a skip. A `RedisCluster` is such servers, on loopback TCP ports too, made
//! one cluster.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first PING.
const READY: Duration = Duration::from_secs(10);

pub struct RedisServer {
    child: Child,
    dir: PathBuf,
    options: Vec<String>,
}

impl RedisServer {
    /// A new server, up (answering PING).
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// A new server with more `redis-server` options (`["--maxmemory", "1mb"]`).
    pub fn start_with(options: &[&str]) -> RedisServer {
        installed();
        swept();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "multiproc-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        let child = spawn(&dir, &options);
        let server = RedisServer {
            child,
            dir,
            options,
        };
        server.ready();
        server
    }

    /// A new server that also serves TLS on a free loopback port, with a certificate (for
    /// `localhost` and 127.0.0.1) of its own authority: its `rediss://` URL and the authority's
    /// certificate (PEM).
    pub fn start_tls() -> (RedisServer, String, Vec<u8>) {
        installed();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let scratch = std::env::temp_dir().join(format!(
            "multiproc-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&scratch).unwrap();
        let file = |name: &str| scratch.join(name).to_str().unwrap().to_owned();
        std::fs::write(
            file("leaf.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
             subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        let openssl = |args: &[&str]| {
            let made = Command::new("openssl")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl makes the test's certificates");
            assert!(made.success(), "openssl {args:?} failed");
        };
        // An authority, and the server's certificate, which it signs.
        let authority = [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=multiproc test authority",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ];
        openssl(
            &[
                &authority[..],
                &["-keyout", &file("ca.key"), "-out", &file("ca.pem")],
            ]
            .concat(),
        );
        let request = [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ];
        openssl(
            &[
                &request[..],
                &["-keyout", &file("key.pem"), "-out", &file("leaf.csr")],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &file("leaf.csr"),
            "-CA",
            &file("ca.pem"),
            "-CAkey",
            &file("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &file("leaf.ext"),
            "-out",
            &file("cert.pem"),
        ]);
        let pem = std::fs::read(file("ca.pem")).unwrap();
        // A free port now may be taken by the time the server binds it: try a few.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port()
                .to_string();
            let server = RedisServer::start_with(&[
                "--tls-port",
                &port,
                "--bind",
                "127.0.0.1",
                "--tls-cert-file",
                &file("cert.pem"),
                "--tls-key-file",
                &file("key.pem"),
                "--tls-ca-cert-file",
                &file("ca.pem"),
                "--tls-auth-clients",
                "no",
            ]);
            let log = std::fs::read_to_string(server.dir.join("log")).unwrap_or_default();
            if !log.contains("Address already in use") {
                // (The server read its certificate and key as it started.)
                let _ = std::fs::remove_dir_all(&scratch);
                return (server, format!("rediss://localhost:{port}"), pem);
            }
        }
        panic!("no free port for the TLS server in five tries");
    }

    /// Kills the server (SIGKILL, by its pid): what it had not written to disk is lost.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again, on the same socket and directory, with the same options.
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.socket());
        self.child = spawn(&self.dir, &self.options);
        self.ready();
    }

    /// Waits until it answers PING.
    fn ready(&self) {
        let start = Instant::now();
        while !self.answers_ping() {
            assert!(
                start.elapsed() < READY,
                "redis-server did not answer within {READY:?}; its log:\n{}",
                std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A redis-server in `dir` with `options` (later ones win over the defaults).
fn spawn(dir: &std::path::Path, options: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .unwrap();
    let socket = dir.join("r.sock");
    let mut command = Command::new("redis-server");
    command
        .args(["--port", "0", "--unixsocket"])
        .arg(&socket)
        .args([
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
        ])
        .arg(dir)
        .args(options)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: the closure runs in the child between fork and exec, and only makes one system
    // call (prctl: async-signal-safe), asking the kernel to kill the server with the thread
    // that started it.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run redis-server: {e}"))
}

impl RedisServer {
    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("r.sock")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command (its words) and gives the raw answer.
    pub fn command(&self, words: &[&str]) -> String {
        let mut stream = UnixStream::connect(self.socket()).unwrap();
        stream.set_read_timeout(Some(READY)).unwrap();
        let mut request = format!("*{}\r\n", words.len());
        for word in words {
            request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = vec![0u8; 1 << 16];
        let n = stream.read(&mut answer).unwrap();
        String::from_utf8_lossy(&answer[..n]).into_owned()
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(self.socket()) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 6];
        // PONG, or NOAUTH from a server with a password: up either way.
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && (&answer == b"+PONG\r" || &answer == b"-NOAUT")
    }
}

/// Removes the directories of servers whose test binary has ended (a server that lives as long
/// as its binary, as `tests/redis_cluster.rs`'s shared cluster, is never dropped): once per
/// test binary.
fn swept() {
    static SWEPT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name
                .to_str()
                .and_then(|n| n.strip_prefix("multiproc-redis-"))
            else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// Installs redis-server (Debian's package) if this machine has none: once per test binary.
fn installed() {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let runs = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if runs("redis-server", &["--version"]) && runs("openssl", &["version"]) {
            return;
        }
        eprintln!(
            "redis-server is missing: installing Debian's package (apt-get install redis-server)"
        );
        let script = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                      redis-server openssl && (systemctl stop redis-server 2>/dev/null || true)";
        assert!(
            runs("sh", &["-c", script]) && runs("redis-server", &["--version"]),
            "redis-server is missing and could not be installed (apt-get install redis-server): \
             the Redis tests need a real server"
        );
    });
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "redis-server's log (the test failed):\n{}",
                std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A suite's manager on Redis, and the server it is on if it is the manager's own (it lives as
/// long as the manager).
pub struct Served {
    pub manager: multiproc::Manager,
    pub _server: Option<RedisServer>,
}

impl std::ops::Deref for Served {
    type Target = multiproc::Manager;
    fn deref(&self) -> &multiproc::Manager {
        &self.manager
    }
}

impl Served {
    pub fn shutdown(self) -> Result<(), multiproc::ManagerError> {
        self.manager.shutdown()
    }
}

/// A Redis Cluster of real redis-servers, each a [`RedisServer`] that also serves TCP on a
/// loopback port (the nodes tell their clients each other's addresses), the slots split evenly
/// between them, no replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    ports: Vec<u16>,
}

impl RedisCluster {
    /// A new cluster of `n` nodes, every slot served (each node says `cluster_state:ok`).
    pub fn start(n: usize) -> RedisCluster {
        let mut nodes = Vec::new();
        let mut ports = Vec::new();
        while nodes.len() < n {
            // (A port free now may be taken by the time the server binds it: unlikely, and
            // then the node fails to start, and the test with it.) Its cluster bus is the
            // port + 10000.
            let mut tries = 0;
            let (node, port) = loop {
                tries += 1;
                assert!(
                    tries <= 10,
                    "no free port pair for a cluster node in ten tries"
                );
                let port = free_port();
                if port > 55535 || std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_err()
                {
                    continue;
                }
                let port_text = port.to_string();
                let node = RedisServer::start_with(&[
                    "--port",
                    &port_text,
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "15000",
                ]);
                break (node, port);
            };
            nodes.push(node);
            ports.push(port);
        }
        let cluster = RedisCluster { nodes, ports };
        let per_node = 16384 / n;
        for (i, node) in cluster.nodes.iter().enumerate() {
            let first = i * per_node;
            let last = if i + 1 == n {
                16383
            } else {
                first + per_node - 1
            };
            let epoch = (i + 1).to_string();
            assert_ok(node.command(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch]));
            assert_ok(node.command(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &first.to_string(),
                &last.to_string(),
            ]));
        }
        for port in &cluster.ports[1..] {
            assert_ok(cluster.nodes[0].command(&[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &port.to_string(),
            ]));
        }
        let start = Instant::now();
        let known = format!("cluster_known_nodes:{n}");
        while !cluster.nodes.iter().all(|node| {
            let info = node.command(&["CLUSTER", "INFO"]);
            info.contains("cluster_state:ok") && info.contains(&known)
        }) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the cluster did not form within 30 s: {}",
                cluster.nodes[0].command(&["CLUSTER", "INFO"])
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster
    }

    /// The nodes' URLs, as `RedisOptions::cluster` takes them.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// Node `i`'s id in the cluster.
    pub fn id(&self, i: usize) -> String {
        let answer = self.nodes[i].command(&["CLUSTER", "MYID"]);
        answer.lines().nth(1).unwrap_or_default().to_owned()
    }

    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// The keys under `pattern` that node `i` holds.
    pub fn keys(&self, i: usize, pattern: &str) -> Vec<String> {
        let answer = self.nodes[i].command(&["KEYS", pattern]);
        answer
            .lines()
            .skip(1)
            .filter(|line| !line.starts_with('$'))
            .map(str::to_owned)
            .collect()
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn assert_ok(answer: String) {
    assert!(
        answer.starts_with("+OK"),
        "a cluster command failed: {answer}"
    );
}

/// `Manager::drop_namespace`, on whatever backend `manager` makes (a manager on Redis in the
/// namespace given), where `keys` counts the keys under a pattern: fills namespace "gone" with
/// objects of every kind (named and not, nested, watched, a lock taken and released, a queue
/// with items) and namespace "kept" with a few, drops "gone", and checks that every key of
/// "gone" went, its proxies are `UnknownObject`, and "kept" is whole.
pub fn drops_a_namespace_and_no_other(
    manager: impl Fn(&str) -> multiproc::Manager,
    keys: impl Fn(&str) -> usize,
) {
    use multiproc::{ErrorCode, ManagerError};
    let gone = manager("gone");
    let kept = manager("kept");
    let d = gone.dict_named::<String, u32>("d").unwrap();
    d.insert("a", 1).unwrap();
    let inner = d.dict_in::<String, u32>(&"inner".to_string()).unwrap();
    inner.insert("b", 2).unwrap();
    let l = gone.list::<u32>().unwrap();
    l.extend([1, 2, 3]).unwrap();
    let _watch = l.watch().unwrap();
    l.push(4).unwrap();
    let lock = gone.lock().unwrap();
    drop(lock.acquire().unwrap());
    let q = gone.queue::<u32>().unwrap();
    q.put(7).unwrap();
    let v = gone.value::<i64>(&5).unwrap();
    let kept_d = kept.dict_named::<String, u32>("d").unwrap();
    kept_d.insert("k", 9).unwrap();
    let kept_q = kept.queue::<u32>().unwrap();
    kept_q.put(8).unwrap();
    let kept_keys = keys("mp:{kept:*");
    assert!(keys("mp:{gone:*") > 6, "the objects have keys");
    // d, its nested dict, l, the lock, q and v.
    assert_eq!(gone.drop_namespace().unwrap(), 6);
    assert_eq!(keys("mp:{gone:*"), 0, "every key of the namespace went");
    assert_eq!(
        keys("mp:{kept:*"),
        kept_keys,
        "another namespace lost nothing"
    );
    let unknown = |r: Result<(), ManagerError>| {
        matches!(
            r,
            Err(ManagerError::Remote {
                code: ErrorCode::UnknownObject,
                ..
            })
        )
    };
    assert!(unknown(d.insert("a", 2)));
    assert!(unknown(inner.len().map(|_| ())));
    assert!(unknown(l.push(5)));
    assert!(unknown(q.put(1)));
    assert!(unknown(v.set(1)));
    assert_eq!(kept_d.get("k").unwrap(), Some(9));
    assert_eq!(kept_q.get().unwrap(), 8);
    // A name of the dropped namespace makes a new object; dropping again finds it alone.
    assert!(
        gone.dict_named::<String, u32>("d")
            .unwrap()
            .is_empty()
            .unwrap()
    );
    assert_eq!(gone.drop_namespace().unwrap(), 1);
    assert_eq!(gone.drop_namespace().unwrap(), 0);
}
