//! Scenario S8, employee: a user type registered with a manager; ten processes call
//! `increase()` on one managed `Employee("zhangsan", 1000)`, then the parent prints `get_pay()`.
//!
//! Python's version:
//!
//! ```python
//! class Employee:
//!     def __init__(self, name, salary): self.name, self.salary = name, salary
//!     def increase(self): self.salary += 100
//!     def get_pay(self): return f"{self.name}:{self.salary}"
//!
//! class MyManager(BaseManager): pass
//! MyManager.register("Employee", Employee)
//! ```
//!
//! Run it: `cargo run --release --example employee`.

use multiproc::{Manager, ObjectProxy, Process};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Employee {
    name: String,
    salary: i64,
}

// Served by the manager, called through `ObjectProxy<Employee>` by name (`EmployeeMethods`).
#[multiproc::shared]
impl Employee {
    pub fn increase(&mut self) {
        self.salary += 100;
    }

    pub fn get_pay(&self) -> String {
        format!("{}:{}", self.name, self.salary)
    }
}

fn work(employee: ObjectProxy<Employee>) {
    employee.increase().expect("the manager runs");
}

pub fn run() -> multiproc::Result<()> {
    // A manager process runs the methods, so it is told the type; on Redis (MULTIPROC_REDIS_URL
    // set) each caller runs them itself.
    let manager = match std::env::var_os("MULTIPROC_REDIS_URL") {
        Some(_) => Manager::from_env()?,
        None => Manager::builder().register::<Employee>().start()?,
    };
    let employee = manager.create(&Employee {
        name: "zhangsan".into(),
        salary: 1000,
    })?;
    multiproc::join_all((0..10).map(|_| Process::spawn(employee.clone(), work)))?;
    println!("{}", employee.get_pay()?);
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
