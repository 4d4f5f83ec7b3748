//! `repo serve` against nginx, side by side in one run: both serve the same `public/`
//! over TLS on loopback to the same client, and after each load the run prints each
//! server's peak memory (VmHWM; nginx's summed over its master and workers) and its CPU
//! time per run of the load.
//!
//! Two clients: ureq over HTTP/1.1, one thread and one kept connection per client, for
//! the downloads and one small-document load; and h2load (nghttp2's load generator, one
//! thread, 100 connections) for small documents over HTTP/1.1 and HTTP/2. 100 ureq
//! threads take more CPU than the servers do and share the machine's cores with them,
//! which flatters the slower server; h2load takes little, so its loads measure the
//! servers. Without h2load installed (Debian's `nghttp2-client`), its loads are skipped
//! with a message.
//!
//! `repo serve` runs as a process of its own: this binary started again with
//! `MODHOST_BENCH_SERVE` set, so that its memory is measured apart from the clients'.
//! nginx is Debian's, which `scripts/bench` installs before running this; without it, its
//! side is skipped with a message. See BENCHMARKS.md for results.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use modhost_repo::serve::Server;
use modhost_update::index::FORMAT;
use modhost_update::{Entry, Index};

/// Set to the fixture directory, it makes this binary the `repo serve` process.
const SERVE_ENV: &str = "MODHOST_BENCH_SERVE";
/// Concurrent clients, each on its own thread and connection.
const CLIENTS: usize = 100;
/// Small-document GETs each client makes per iteration, one after the other on its kept
/// connection.
const GETS_PER_CLIENT: usize = 20;
const SERVERS: [&str; 2] = ["modhost", "nginx"];
/// Requests of each h2load run, spread over its connections.
const H2LOAD_REQUESTS: usize = 20_000;
const MIB: usize = 1 << 20;

fn main() {
    if let Some(dir) = std::env::var_os(SERVE_ENV) {
        serve(Path::new(&dir));
        return;
    }
    divan::main();
    let measured = MEASURED.lock().map(|m| m.clone()).unwrap_or_default();
    if !measured.is_empty() {
        println!("\nserver processes, per load (a fresh server for each):");
        println!(
            "{:<36} {:<8} {:>12} {:>12} {:>14}",
            "load", "server", "idle VmHWM", "peak VmHWM", "CPU per load"
        );
        for m in measured {
            println!(
                "{:<36} {:<8} {:>8.1} MiB {:>8.1} MiB {:>11.1} ms",
                m.load,
                m.server,
                m.idle_kib as f64 / 1024.0,
                m.peak_kib as f64 / 1024.0,
                m.cpu_secs * 1000.0 / m.iterations.max(1) as f64
            );
        }
    }
}

/// The `repo serve` process: the library's server over the fixture in `dir`, with its
/// defaults but one — every load comes from 127.0.0.1, standing for many clients, so that
/// one address may hold every connection (as nginx here has no per-client limit either) —
/// printing its address for the benchmark to read.
fn serve(dir: &Path) {
    let server = Server::bind(
        &dir.join("repo"),
        "127.0.0.1:0",
        &dir.join("server.pem"),
        &dir.join("server.key"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .max_per_client(modhost_repo::serve::DEFAULT_MAX_CONNECTIONS);
    let addr = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let mut stdout = std::io::stdout();
    let printed = writeln!(stdout, "{addr}").and_then(|()| stdout.flush());
    printed.unwrap_or_else(|e| panic!("{e}"));
    server.run().unwrap_or_else(|e| panic!("{e}"));
}

/// What one server process used for one load.
#[derive(Clone)]
struct Measured {
    load: String,
    server: &'static str,
    idle_kib: u64,
    peak_kib: u64,
    cpu_secs: f64,
    /// How many times the load ran: the CPU time is shown per run.
    iterations: usize,
}

static MEASURED: Mutex<Vec<Measured>> = Mutex::new(Vec::new());

/// The certificates and the repository both servers serve, made once: the small
/// document (the index, 30 modules) and packages of 1 and 10 MiB.
fn fixture() -> &'static Path {
    static FIXTURE: OnceLock<tempfile::TempDir> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            modhost_test_support::tls::generate(dir.path());
            let public = dir.path().join("repo/public");
            let packages = public.join("packages");
            std::fs::create_dir_all(&packages).unwrap_or_else(|e| panic!("{e}"));
            let index = Index {
                format: FORMAT.into(),
                modules: (0..30)
                    .map(|i| Entry {
                        rawname: format!("module{i}"),
                        name: format!("Module {i}"),
                        version: "1.0.0".into(),
                        file: format!("module{i}-1.0.0.tgz"),
                        size: 1000,
                        sha256: "0".repeat(64),
                        group: None,
                    })
                    .collect(),
                malformed: Vec::new(),
            };
            let index = serde_json::to_vec(&index).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(public.join("index.json"), index).unwrap_or_else(|e| panic!("{e}"));
            for mib in [1, 10] {
                std::fs::write(packages.join(format!("big-{mib}.tgz")), noise(mib * MIB))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            // nginx's workers run as `nobody` when it is started as root: they must be
            // able to read the files.
            for path in [dir.path(), &dir.path().join("repo"), &public, &packages] {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            dir
        })
        .path()
}

/// Incompressible bytes, as a package's are.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A server process under measurement.
struct Running {
    name: &'static str,
    child: Child,
    port: u16,
    /// nginx's prefix directory, holding its configuration; stopped through it.
    nginx: Option<tempfile::TempDir>,
    idle_kib: u64,
}

impl Running {
    /// `server` started fresh over the fixture, or None (with a message) when it is nginx
    /// and nginx is not installed.
    fn start(server: &str) -> Option<Running> {
        let mut running = match server {
            "modhost" => Running::modhost(),
            _ => Running::nginx()?,
        };
        wait_until_listening(running.port);
        running.idle_kib = running.peak_kib();
        Some(running)
    }

    fn modhost() -> Running {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new(exe)
            .env(SERVE_ENV, fixture())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start repo serve: {e}"));
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let read = BufReader::new(stdout).read_line(&mut line);
            read.unwrap_or_else(|e| panic!("{e}"));
        }
        let addr: SocketAddr = line
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("repo serve printed {line:?}: {e}"));
        Running {
            name: "modhost",
            child,
            port: addr.port(),
            nginx: None,
            idle_kib: 0,
        }
    }

    fn nginx() -> Option<Running> {
        let Some(nginx) = nginx_binary() else {
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| {
                eprintln!(
                    "nginx is not installed: its side of the comparison is skipped \
                     (scripts/bench installs it)"
                );
            });
            return None;
        };
        // A free port, released for nginx to take.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        let prefix = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fixture = fixture();
        let conf = prefix.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(prefix.path(), fixture, port))
            .unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new(nginx)
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.path().join("error.log"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nginx: {e}"));
        Some(Running {
            name: "nginx",
            child,
            port,
            nginx: Some(prefix),
            idle_kib: 0,
        })
    }

    /// The peak resident memory so far, in KiB: VmHWM of the process and of its children
    /// (nginx's workers), summed.
    fn peak_kib(&self) -> u64 {
        self.pids()
            .iter()
            .filter_map(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    }

    /// CPU time used so far, user and system, in seconds: the process and its children.
    fn cpu_secs(&self) -> f64 {
        // /proc counts in USER_HZ, 100 a second on Linux.
        let ticks: u64 = self
            .pids()
            .iter()
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // Fields after the command name, which is in parentheses.
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                let utime: u64 = fields.get(11)?.parse().ok()?;
                let stime: u64 = fields.get(12)?.parse().ok()?;
                Some(utime + stime)
            })
            .sum();
        ticks as f64 / 100.0
    }

    fn pids(&self) -> Vec<u32> {
        let pid = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        std::iter::once(pid)
            .chain(children.split_whitespace().filter_map(|c| c.parse().ok()))
            .collect()
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Records what the process used for `iterations` runs of `load`.
    fn measured(&self, load: &str, iterations: usize) {
        let measured = Measured {
            load: load.to_owned(),
            server: self.name,
            idle_kib: self.idle_kib,
            peak_kib: self.peak_kib(),
            cpu_secs: self.cpu_secs(),
            iterations,
        };
        if let Ok(mut all) = MEASURED.lock() {
            all.push(measured);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(prefix) = &self.nginx {
            // `stop` reaches the workers too, which killing the master would not.
            let _ = Command::new(nginx_binary().unwrap_or_else(|| "nginx".into()))
                .arg("-p")
                .arg(prefix.path())
                .arg("-c")
                .arg(prefix.path().join("nginx.conf"))
                .args(["-s", "stop"])
                .stderr(Stdio::null())
                .status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nginx"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
}

/// nginx as a publisher would run it for static files: as many workers as cores,
/// sendfile, keep-alive, HTTP/2 offered; no access log, as `repo serve` here has no log
/// subscriber.
fn nginx_conf(prefix: &Path, fixture: &Path, port: u16) -> String {
    let (prefix, fixture) = (prefix.display(), fixture.display());
    format!(
        "worker_processes auto;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ application/json json; application/gzip tgz; application/zip zip; text/plain minisig; application/xml xml; }}
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 10s;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {fixture}/server.pem;
        ssl_certificate_key {fixture}/server.key;
        root {fixture}/repo/public;
    }}
}}
"
    )
}

fn wait_until_listening(port: u16) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no server on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One ureq agent per client: each keeps its own connection.
fn agents(clients: usize) -> Vec<ureq::Agent> {
    let pem = std::fs::read(fixture().join("ca.pem")).unwrap_or_else(|e| panic!("{e}"));
    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    (0..clients)
        .map(|_| {
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
            let config = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(120)))
                .tls_config(tls)
                .build();
            ureq::Agent::new_with_config(config)
        })
        .collect()
}

/// GETs `url` and reads `expected` bytes of it.
fn fetch(agent: &ureq::Agent, url: &str, expected: usize) {
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let read = std::io::copy(&mut response.body_mut().as_reader(), &mut std::io::sink())
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(read, expected as u64, "{url}");
}

/// `clients` concurrent downloads of the `mib` MiB package from `server`.
fn downloads(bencher: Bencher, server: &str, clients: usize, mib: usize) {
    let Some(running) = Running::start(server) else {
        return;
    };
    let url = running.url(&format!("/packages/big-{mib}.tgz"));
    let agents = agents(clients);
    let iterations = AtomicUsize::new(0);
    bencher
        .counter(BytesCount::new(clients * mib * MIB))
        .bench(|| {
            iterations.fetch_add(1, Ordering::Relaxed);
            std::thread::scope(|scope| {
                for agent in &agents {
                    scope.spawn(|| fetch(agent, &url, mib * MIB));
                }
            });
        });
    running.measured(
        &format!("{clients} downloads of {mib} MiB at once"),
        iterations.into_inner(),
    );
}

/// 100 concurrent downloads of a 1 MiB and a 10 MiB package: throughput, and memory
/// against the package's size.
#[divan::bench(args = SERVERS, consts = [1, 10], sample_count = 5, sample_size = 1)]
fn download_by_100_clients<const MIB_SIZE: usize>(bencher: Bencher, server: &str) {
    downloads(bencher, server, CLIENTS, MIB_SIZE);
}

/// 10 concurrent downloads of the 10 MiB package: memory against the number of
/// connections.
#[divan::bench(args = SERVERS, sample_count = 5, sample_size = 1)]
fn download_10_mib_by_10_clients(bencher: Bencher, server: &str) {
    downloads(bencher, server, 10, 10);
}

/// 100 concurrent clients, each GETting the index 20 times on its kept connection.
#[divan::bench(args = SERVERS, sample_count = 10, sample_size = 1)]
fn small_document_by_100_clients(bencher: Bencher, server: &str) {
    let Some(running) = Running::start(server) else {
        return;
    };
    let url = running.url("/index.json");
    let expected = std::fs::metadata(fixture().join("repo/public/index.json"))
        .map(|m| m.len() as usize)
        .unwrap_or_else(|e| panic!("{e}"));
    let agents = agents(CLIENTS);
    let iterations = AtomicUsize::new(0);
    bencher
        .counter(ItemsCount::new(CLIENTS * GETS_PER_CLIENT))
        .bench(|| {
            iterations.fetch_add(1, Ordering::Relaxed);
            std::thread::scope(|scope| {
                for agent in &agents {
                    scope.spawn(|| {
                        for _ in 0..GETS_PER_CLIENT {
                            let mut response = agent
                                .get(&url)
                                .call()
                                .unwrap_or_else(|e| panic!("{url}: {e}"));
                            let mut body = Vec::with_capacity(expected);
                            let read = response.body_mut().as_reader().read_to_end(&mut body);
                            assert_eq!(read.ok(), Some(expected), "{url}");
                        }
                    });
                }
            });
        });
    running.measured(
        &format!("{CLIENTS} clients × {GETS_PER_CLIENT} GETs of the index"),
        iterations.into_inner(),
    );
}

fn h2load_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("h2load"))
            .collect::<Vec<_>>()
    });
    let found = on_path
        .chain([PathBuf::from("/usr/bin/h2load")])
        .find(|p| p.is_file());
    if found.is_none() {
        static SAID: OnceLock<()> = OnceLock::new();
        SAID.get_or_init(|| {
            eprintln!(
                "h2load is not installed: its loads are skipped (apt install nghttp2-client)"
            );
        });
    }
    found
}

/// h2load with 100 connections, on one thread, GETting the index 20 000 times in all over
/// HTTP/1.1 (`HTTP` 1) or HTTP/2 (`HTTP` 2), identity-encoded; each iteration connects
/// afresh, TLS handshakes included, as the auditor's runs did.
#[divan::bench(args = SERVERS, consts = [1, 2], sample_count = 5, sample_size = 1)]
fn small_document_by_h2load<const HTTP: usize>(bencher: Bencher, server: &str) {
    let Some(h2load) = h2load_binary() else {
        return;
    };
    let Some(running) = Running::start(server) else {
        return;
    };
    let url = running.url("/index.json");
    let protocol = if HTTP == 2 {
        "--npn-list=h2"
    } else {
        "--npn-list=http/1.1"
    };
    let requests = H2LOAD_REQUESTS.to_string();
    let clients = CLIENTS.to_string();
    let succeeded = format!("{H2LOAD_REQUESTS} succeeded");
    let iterations = AtomicUsize::new(0);
    bencher.counter(ItemsCount::new(H2LOAD_REQUESTS)).bench(|| {
        iterations.fetch_add(1, Ordering::Relaxed);
        let output = Command::new(&h2load)
            .args([protocol, "-t1", "-n", &requests, "-c", &clients])
            .args(["-H", "accept-encoding: identity", &url])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run h2load: {e}"));
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            report.contains(&succeeded),
            "h2load against {url}: {report}"
        );
    });
    running.measured(
        &format!("h2load, HTTP/{HTTP}: {H2LOAD_REQUESTS} index GETs"),
        iterations.into_inner(),
    );
}
