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

use multiproc::{Args, CallError, Manager, ObjectProxy, Process, Reply, Shared};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Employee {
    name: String,
    salary: i64,
}

impl Shared for Employee {
    const TYPE_NAME: &'static str = "Employee";

    fn call(&mut self, method: &str, _args: Args) -> Result<Reply, CallError> {
        match method {
            "increase" => {
                self.salary += 100;
                Ok(Reply::unit())
            }
            "get_pay" => Reply::of(&format!("{}:{}", self.name, self.salary)),
            _ => Err(CallError::not_exposed(method)),
        }
    }
}

fn work(employee: ObjectProxy<Employee>) {
    employee
        .call::<_, ()>("increase", &())
        .expect("the manager runs");
}

pub fn run() -> multiproc::Result<()> {
    let manager = Manager::builder().register::<Employee>().start()?;
    let employee = manager.create(&Employee {
        name: "zhangsan".into(),
        salary: 1000,
    })?;
    let workers = (0..10)
        .map(|_| Process::spawn(employee.clone(), work))
        .collect::<Result<Vec<_>, _>>()?;
    for w in workers {
        w.join()?;
    }
    println!("{}", employee.call::<_, String>("get_pay", &())?);
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
