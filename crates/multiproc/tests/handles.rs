//! Values that carry OS handles travel as ordinary arguments and results: the descriptors move with
//! SCM_RIGHTS, and both processes see the same memory.

multiproc::test_support!();

mod common;

use common::DEADLINE;
use multiproc::{Process, SharedMemory, ShmError, StartMethod};

const METHODS: [StartMethod; 3] = [
    StartMethod::Spawn,
    StartMethod::Fork,
    StartMethod::ForkServer,
];

#[test]
fn a_child_writes_through_shared_memory_and_the_parent_reads() {
    for method in METHODS {
        let shm = SharedMemory::create(4096).unwrap();
        shm.write_at(0, b"parent").unwrap();
        let mut p = Process::builder()
            .start_method(method)
            .spawn(shm.clone(), |shm: SharedMemory| {
                let mut seen = [0u8; 6];
                shm.read_at(0, &mut seen).unwrap();
                shm.write_at(4090, b"child!").unwrap();
                seen
            })
            .unwrap();
        assert_eq!(
            &p.join_timeout(DEADLINE).unwrap(),
            b"parent",
            "{method:?}: the child saw the parent's write"
        );
        let mut out = [0u8; 6];
        shm.read_at(4090, &mut out).unwrap();
        assert_eq!(
            &out, b"child!",
            "{method:?}: the parent sees the child's write"
        );
    }
}

#[test]
fn handles_inside_structures_and_the_same_handle_twice() {
    let blocks: Vec<SharedMemory> = (0..3).map(|_| SharedMemory::create(8).unwrap()).collect();
    let same = SharedMemory::create(8).unwrap();
    let args = (
        blocks.clone(),
        "tag".to_string(),
        same.clone(),
        same.clone(),
    );
    let mut p = Process::spawn(
        args,
        |(blocks, tag, a, b): (Vec<SharedMemory>, String, SharedMemory, SharedMemory)| {
            for (i, block) in blocks.iter().enumerate() {
                block.write_at(0, &[i as u8 + 1; 8]).unwrap();
            }
            a.write_at(0, tag.as_bytes()).unwrap();
            let mut via_b = [0u8; 3];
            b.read_at(0, &mut via_b).unwrap();
            via_b
        },
    )
    .unwrap();
    assert_eq!(
        &p.join_timeout(DEADLINE).unwrap(),
        b"tag",
        "two handles to one block see one memory"
    );
    for (i, block) in blocks.iter().enumerate() {
        let mut out = [0u8; 8];
        block.read_at(0, &mut out).unwrap();
        assert_eq!(out, [i as u8 + 1; 8]);
    }
}

#[test]
fn a_handle_made_in_the_child_comes_back_in_its_result() {
    for method in METHODS {
        let mut p = Process::builder()
            .start_method(method)
            .spawn(32usize, |len: usize| {
                let shm = SharedMemory::create(len).unwrap();
                shm.write_at(0, b"made in the child").unwrap();
                shm
            })
            .unwrap();
        let shm = p.join_timeout(DEADLINE).unwrap();
        assert!(!p.is_alive(), "the creator is gone, the memory stays");
        assert_eq!(shm.len(), 32);
        let mut out = [0u8; 17];
        shm.read_at(0, &mut out).unwrap();
        assert_eq!(&out, b"made in the child", "{method:?}");
    }
}

#[test]
fn accesses_out_of_bounds_are_errors() {
    let shm = SharedMemory::create(10).unwrap();
    assert!(matches!(
        shm.write_at(8, b"abc"),
        Err(ShmError::OutOfBounds {
            offset: 8,
            len: 3,
            size: 10
        })
    ));
    assert!(matches!(
        shm.read_at(usize::MAX, &mut [0u8; 2]),
        Err(ShmError::OutOfBounds { .. })
    ));
    let empty = SharedMemory::create(0).unwrap();
    assert!(empty.is_empty());
    assert!(empty.write_at(0, b"x").is_err());
}

#[test]
fn a_handle_cannot_be_serialized_outside_multiproc() {
    // Its descriptor would mean nothing in the bytes alone.
    let shm = SharedMemory::create(1).unwrap();
    assert!(postcard::to_stdvec(&shm).is_err());
}

#[test]
fn too_many_handles_in_one_message_fail_in_the_caller() {
    let blocks: Vec<SharedMemory> = (0..300).map(|_| SharedMemory::create(1).unwrap()).collect();
    let err = Process::spawn(blocks, |b: Vec<SharedMemory>| b.len()).unwrap_err();
    assert!(matches!(err, multiproc::SpawnError::Encode(_)), "{err:?}");
}
