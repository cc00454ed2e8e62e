//! Scenario S5, dict_list_child: a manager dict, and a manager list holding 0..5; a child stores
//! two string entries in the dict and appends 11, 22, 33 to the list.
//!
//! Python's version:
//!
//! ```python
//! def work(d, l):
//!     d["name"] = "multiproc"
//!     d["lang"] = "rust"
//!     l.extend([11, 22, 33])
//!
//! with Manager() as m:
//!     d = m.dict(); l = m.list(range(5))
//!     p = Process(target=work, args=(d, l)); p.start(); p.join()
//!     print(l); print(d)
//! ```
//!
//! Run it: `cargo run --release --example dict_list_child`.

use multiproc::{DictProxy, ListProxy, Manager, Process};

fn work((d, l): (DictProxy<String, String>, ListProxy<i32>)) {
    d.insert("name", "multiproc").expect("the manager runs");
    d.insert("lang", "rust").expect("the manager runs");
    l.extend([11, 22, 33]).expect("the manager runs");
}

pub fn run() -> multiproc::Result<()> {
    let manager = Manager::from_env()?; // on Redis if MULTIPROC_REDIS_URL says where
    let d = manager.dict::<String, String>()?;
    let l = manager.list_from(&[0, 1, 2, 3, 4])?;
    Process::spawn((d.clone(), l.clone()), work)?.join()?;
    println!("{:?}", l.to_vec()?);
    let mut entries = d.items()?;
    entries.sort();
    for (k, v) in entries {
        println!("{k}: {v}");
    }
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
