//! The manager's proxies on a Redis Cluster of three real redis-servers (`common::redis`): the
//! data and waits suites that `manager.rs` and `redis.rs` run, each test in a namespace of its own
//! on one cluster, and what is the cluster's own: objects spread over its nodes while a nested
//! tree stays on one, a slot that moves to another node, a node that dies.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::join;
use common::redis::RedisCluster;
use multiproc::{Manager, ManagerError, Process, RedisOptions};

/// Leases of 300 ms: a dead holder's lock is the next taker's soon.
const LEASE: Duration = Duration::from_millis(300);

/// The suites' backend here: one cluster for the whole binary, a namespace for each test.
mod backend {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};

    use crate::common::redis::Served;

    /// The cluster's URLs. Its servers are started by a thread that never ends, so that they
    /// live as long as this test binary (they die with the thread that started them).
    fn shared() -> &'static [String] {
        static URLS: OnceLock<Vec<String>> = OnceLock::new();
        URLS.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let cluster = super::RedisCluster::start(3);
                tx.send(cluster.urls()).unwrap();
                loop {
                    std::thread::park();
                }
            });
            rx.recv().expect("the cluster started")
        })
    }

    pub fn manager() -> Served {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let namespace = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let options = multiproc::RedisOptions::cluster(shared())
            .namespace(namespace)
            .lease(super::LEASE);
        Served {
            manager: multiproc::Manager::redis(options).unwrap(),
            _server: None,
        }
    }
}

#[path = "suite/data.rs"]
mod data;

#[path = "suite/waits.rs"]
mod waits;

/// A manager on `cluster`, in `namespace`.
fn on(cluster: &RedisCluster, namespace: &str) -> Manager {
    Manager::redis(
        RedisOptions::cluster(cluster.urls())
            .namespace(namespace)
            .lease(LEASE),
    )
    .unwrap()
}

#[test]
fn objects_spread_over_the_nodes_and_a_nested_tree_stays_on_one() {
    use std::collections::HashMap;
    let cluster = RedisCluster::start(3);
    let manager = on(&cluster, "spread");
    let mut outers = Vec::new();
    for i in 0..24u32 {
        let outer = manager.dict::<String, HashMap<String, Vec<u32>>>().unwrap();
        let middle = outer.dict_in::<String, Vec<u32>>(&"m".to_string()).unwrap();
        let inner = middle.list_in::<u32>(&"l".to_string()).unwrap();
        inner.extend([i, i + 1]).unwrap();
        outers.push(outer);
    }
    // Each node holds some objects (24 objects over 3 nodes: all on one or two is a chance of
    // about 3 in 10^4), and every key of one tree (its hash tag) is on one node.
    let mut tags_of_node = Vec::new();
    for node in 0..3 {
        let keys = cluster.keys(node, "mp:{spread:*");
        assert!(!keys.is_empty(), "node {node} holds none of the 24 objects");
        let tags: std::collections::HashSet<String> = keys
            .iter()
            .map(|key| key.split('}').next().unwrap().to_owned())
            .collect();
        tags_of_node.push(tags);
    }
    for (a, tags) in tags_of_node.iter().enumerate() {
        for other in &tags_of_node[a + 1..] {
            assert!(tags.is_disjoint(other), "one hash tag on two nodes");
        }
    }
    // Reading a root reads its nested containers, on the same node, in one script.
    for (i, outer) in outers.iter().enumerate() {
        let i = i as u32;
        let copy = outer.get("m").unwrap().unwrap();
        assert_eq!(copy["l"], [i, i + 1]);
    }
    // And a child process reaches every one of them through the cluster.
    let total = join(
        Process::spawn(
            outers.clone(),
            |outers: Vec<multiproc::DictProxy<String, HashMap<String, Vec<u32>>>>| {
                outers
                    .iter()
                    .map(|outer| outer.get("m").unwrap().unwrap()["l"].iter().sum::<u32>())
                    .sum::<u32>()
            },
        )
        .unwrap(),
    );
    assert_eq!(total, (0..24).map(|i| 2 * i + 1).sum::<u32>());
    assert_eq!(
        manager.stats().unwrap().objects,
        24 * 3,
        "stats count the objects of every node"
    );
}

#[test]
fn dropping_a_namespace_removes_its_keys_on_every_node() {
    let cluster = RedisCluster::start(3);
    common::redis::drops_a_namespace_and_no_other(
        |namespace| on(&cluster, namespace),
        |pattern| (0..3).map(|node| cluster.keys(node, pattern).len()).sum(),
    );
}

#[test]
fn a_slot_moved_to_another_node_is_followed_and_the_call_runs_once() {
    let cluster = RedisCluster::start(2);
    let manager = on(&cluster, "moving");
    let counts = manager.dict_named::<String, i64>("counts").unwrap();
    counts.incr("n", 1).unwrap();
    let (from, to) = match cluster.keys(0, "mp:{moving:*").is_empty() {
        true => (1, 0),
        false => (0, 1),
    };
    let keys = cluster.keys(from, "mp:{moving:*");
    assert!(!keys.is_empty(), "the dict is on node {from}");
    let slot = cluster.nodes[from].command(&["CLUSTER", "KEYSLOT", &keys[0]]);
    let slot = slot.trim_start_matches(':').trim().to_owned();
    let (from_id, to_id) = (cluster.id(from), cluster.id(to));
    // Redis's own resharding, by hand: import, migrate the keys, give the slot to the other node.
    let ok = |answer: String| assert!(answer.starts_with("+OK"), "{answer}");
    ok(cluster.nodes[to].command(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]));
    ok(cluster.nodes[from].command(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]));
    let port = cluster.port(to).to_string();
    let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
    migrate.extend(keys.iter().map(String::as_str));
    ok(cluster.nodes[from].command(&migrate));
    for node in [to, from] {
        ok(cluster.nodes[node].command(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]));
    }
    // The proxy's connection still sends the dict's calls to the old node, which answers MOVED:
    // the call had not run there, so it is sent to the new one, once.
    assert_eq!(counts.incr("n", 1).unwrap(), 2);
    assert_eq!(counts.get("n").unwrap(), Some(2));
    assert!(cluster.keys(from, "mp:{moving:*").is_empty());
    assert!(!cluster.keys(to, "mp:{moving:*").is_empty());
}

#[test]
fn a_killed_node_is_gone_for_its_objects_while_the_others_serve() {
    let mut cluster = RedisCluster::start(3);
    let manager = on(&cluster, "dying");
    // Tokens, for their ids: an object's keys are under its prefix, which holds its id.
    let dicts: Vec<_> = (0..24)
        .map(|_| manager.create_token("dict", vec![]).unwrap())
        .collect();
    let set = |d: &multiproc::Token| d.call("dict.set", vec!["x".into(), 1.into()]);
    let len = |d: &multiproc::Token| d.call("dict.len", vec![]);
    for d in &dicts {
        set(d).unwrap();
    }
    let victims = cluster.keys(0, "mp:{dying:*");
    assert!(!victims.is_empty(), "node 0 holds none of the 24 dicts");
    let (lost, kept): (Vec<_>, Vec<_>) = dicts.iter().partition(|d| {
        let id = format!(":{:016x}:", d.id());
        victims.iter().any(|key| key.contains(&id))
    });
    assert!(!lost.is_empty() && !kept.is_empty());
    cluster.nodes[0].kill();
    // Within the cluster's node timeout (15 s) the other nodes still serve their slots.
    for d in &kept {
        assert_eq!(len(d).unwrap(), 1.into());
    }
    let start = Instant::now();
    match set(lost[0]) {
        Err(ManagerError::Gone { reason }) => assert!(!reason.is_empty()),
        other => panic!("a call on a dead node's object: {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(2));
    // Its next call is `Gone` again (nothing was re-sent, and nobody serves the slot), and the
    // live nodes still answer.
    assert!(matches!(len(lost[0]), Err(ManagerError::Gone { .. })));
    assert_eq!(len(kept[0]).unwrap(), 1.into());
}

#[test]
fn a_server_that_is_not_a_cluster_or_not_redis_and_bad_options_are_typed_errors() {
    use multiproc::ConnectError;
    // One server, no cluster.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let _plain = common::redis::RedisServer::start_with(&[
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
    ]);
    let not_a_cluster =
        Manager::redis(RedisOptions::cluster([format!("redis://127.0.0.1:{port}")]));
    assert!(
        matches!(
            &not_a_cluster,
            Err(ManagerError::Connect(ConnectError::Protocol(why))) if why.contains("not a Redis Cluster")
        ),
        "{not_a_cluster:?}"
    );
    // Something that answers, not as Redis does.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            use std::io::Write;
            let _ = stream
                .unwrap()
                .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let not_redis = Manager::redis(
        RedisOptions::cluster([format!("redis://127.0.0.1:{port}")])
            .connect_timeout(Duration::from_secs(2)),
    );
    assert!(
        matches!(
            &not_redis,
            Err(ManagerError::Connect(ConnectError::Protocol(why))) if why.contains("not a Redis server")
        ),
        "{not_redis:?}"
    );
    // Nobody there.
    let nobody = Manager::redis(
        RedisOptions::cluster(["redis://127.0.0.1:1"]).connect_timeout(Duration::from_secs(2)),
    );
    assert!(
        matches!(&nobody, Err(ManagerError::Gone { reason }) if reason.contains("refused")),
        "{nobody:?}"
    );
    let none: [&str; 0] = [];
    for options in [
        RedisOptions::cluster(none),
        RedisOptions::cluster(["redis+unix:///tmp/r.sock"]),
        RedisOptions::cluster(["redis://:a@127.0.0.1:1", "redis://:b@127.0.0.1:2"]),
    ] {
        assert!(matches!(
            Manager::redis(options),
            Err(ManagerError::Value(_))
        ));
    }
    // A cluster's node reached as one server answers MOVED for the slots it does not serve:
    // the error says so.
    let cluster = RedisCluster::start(2);
    let single = Manager::connect_redis(&cluster.nodes[0].url()).unwrap();
    let mut moved = None;
    for _ in 0..16 {
        match single.dict::<u8, u8>() {
            Err(ManagerError::Gone { reason }) => moved = Some(reason),
            Ok(_) => continue,
            Err(other) => panic!("{other:?}"),
        }
        break;
    }
    let reason = moved.expect("16 new objects all on the first node's half of the slots");
    assert!(reason.contains("RedisOptions::cluster"), "{reason}");
}
