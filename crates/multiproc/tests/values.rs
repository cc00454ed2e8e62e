//! `Value` and `Array`: plain data shared between processes, as Python's `multiprocessing.Value`
//! and `Array` (`_TestValue`, `_TestArray` in CPython's suite).

multiproc::test_support!();

mod common;

use common::join;
use multiproc::{Array, IndexOutOfRange, Process, ShmSafe, Value};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C)]
struct Particle {
    position: [f64; 3],
    charge: i8,
    alive: u8,
}

#[allow(unsafe_code)] // ShmSafe is an unsafe trait; the SAFETY lines say why it holds
// SAFETY: repr(C), numbers only (any bit pattern is one; padding may hold anything): no pointer,
// descriptor or destructor.
unsafe impl ShmSafe for Particle {}

#[test]
fn values_of_every_plain_type_are_shared() {
    let int = Value::new(-7i16).unwrap();
    let float = Value::new(1.5f32).unwrap();
    let flag = Value::new(0u8).unwrap();
    let particle = Value::new(Particle::default()).unwrap();
    let args = (int.clone(), float.clone(), flag.clone(), particle.clone());
    let seen = Process::spawn(
        args,
        |(int, float, flag, particle): (Value<i16>, Value<f32>, Value<u8>, Value<Particle>)| {
            let seen = (int.get(), float.get(), flag.get());
            int.set(i16::MAX);
            float.update(|f| *f *= 4.0).expect("nobody died");
            flag.set(1);
            let mut p = particle.lock().expect("nobody died");
            p.position = [1.0, 2.0, 3.0];
            p.charge = -1;
            p.alive = 1;
            seen
        },
    )
    .unwrap();
    assert_eq!(
        join(seen),
        (-7, 1.5, 0),
        "the child saw the parent's values"
    );
    assert_eq!((int.get(), float.get(), flag.get()), (i16::MAX, 6.0, 1));
    assert_eq!(
        particle.get(),
        Particle {
            position: [1.0, 2.0, 3.0],
            charge: -1,
            alive: 1
        }
    );
}

#[test]
fn integers_wrap_like_ctypes() {
    let v = Value::new(u8::MAX).unwrap();
    assert_eq!(v.fetch_add(2), u8::MAX);
    assert_eq!(v.get(), 1);
}

#[test]
fn arrays_are_shared_and_bounds_checked() {
    let zeros: Array<f64> = Array::new(4).unwrap();
    assert_eq!(zeros.to_vec(), [0.0; 4]);
    let array = Array::from_slice(&[10u32, 20, 30]).unwrap();
    assert_eq!(array.len(), 3);
    assert_eq!(array.get(1), Some(20));
    assert_eq!(array.get(3), None);
    assert_eq!(array.set(3, 1), Err(IndexOutOfRange { index: 3, len: 3 }));
    let total = Process::spawn(array.clone(), |a: Array<u32>| {
        let mut elements = a.lock().expect("nobody died");
        elements.reverse();
        elements.iter().sum::<u32>()
    })
    .unwrap();
    assert_eq!(join(total), 60);
    assert_eq!(array.to_vec(), [30, 20, 10]);
    let empty: Array<i64> = Array::new(0).unwrap();
    assert!(empty.is_empty());
    assert!(empty.to_vec().is_empty());
}

#[test]
fn an_array_of_structs_travels_inside_a_structure() {
    let particles: Array<Particle> = Array::new(3).unwrap();
    let args = vec![(particles.clone(), 2usize)];
    join(
        Process::spawn(args, |jobs: Vec<(Array<Particle>, usize)>| {
            for (array, index) in jobs {
                array
                    .set(
                        index,
                        Particle {
                            charge: 9,
                            alive: 1,
                            ..Particle::default()
                        },
                    )
                    .unwrap();
            }
        })
        .unwrap(),
    );
    assert_eq!(particles.get(2).map(|p| (p.charge, p.alive)), Some((9, 1)));
    assert_eq!(particles.get(0), Some(Particle::default()));
}
