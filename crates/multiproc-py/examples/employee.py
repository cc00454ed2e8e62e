"""S8, employee: a type of the program's own, registered with a manager; 10 processes call
increase() on one managed Employee. CPython's program, with only the import changed.

A registered object's methods run one call at a time (CPython runs them at once, so that
`self.salary += 100` from ten processes may lose raises): this prints zhangsan:2000, always."""
from multiprocessing import Process

from multiproc.managers import BaseManager


class Employee:
    def __init__(self, name, salary):
        self.name = name
        self.salary = salary

    def increase(self):
        self.salary += 100

    def get_pay(self):
        return f"{self.name}:{self.salary}"


class MyManager(BaseManager):
    pass


MyManager.register("Employee", Employee)


def work(employee):
    employee.increase()


if __name__ == "__main__":
    with MyManager() as manager:
        employee = manager.Employee("zhangsan", 1000)
        workers = [Process(target=work, args=(employee,)) for _ in range(10)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        print(employee.get_pay())
