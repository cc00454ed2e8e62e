//! [`EncodesAs`]: what a proxy, a queue or a pipe of `T`s takes where a `T` goes.

use serde::Serialize;

/// A value that travels as a `T`: the `T` itself, a reference to one, or a form it borrows as
/// (`&str` for a `String`, a slice or an array for a `Vec`). Every method that takes an item, a
/// key or a message takes one, owned or borrowed, as a user has it: on a `DictProxy<String,
/// u32>`, `d.insert("ann", 31)`, `d.insert(&name, &age)` and `d.insert(name, age)` are the same
/// call. Python passes any object; this is the typed version of that.
///
/// It encodes exactly as the `T` would (a `&str` as the `String` it borrows from), so what is
/// sent decodes as a `T` on the other side, and a key finds its entry however it was passed.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// let manager = multiproc::Manager::start()?;
/// let names = manager.list::<String>()?;
/// names.push("ann")?; // &str
/// names.push(String::from("bob"))?; // owned
/// names.push(&"cy".to_string())?; // borrowed
/// let batches = manager.queue::<Vec<u32>>()?;
/// batches.put([1, 2, 3])?; // an array, for a Vec
/// assert_eq!((names.len()?, batches.get()?), (3, vec![1, 2, 3]));
/// # Ok(())
/// # }
/// ```
///
/// A type of one's own that borrows as another implements it the same way: `Encoded` is what is
/// serialized, and must serialize as a `T` does.
pub trait EncodesAs<T: ?Sized> {
    /// What is serialized.
    type Encoded: Serialize + ?Sized;

    /// The value to serialize in place of a `T`.
    fn encoded(&self) -> &Self::Encoded;
}

impl<T: Serialize> EncodesAs<T> for T {
    type Encoded = T;

    fn encoded(&self) -> &T {
        self
    }
}

impl<T: Serialize + ?Sized> EncodesAs<T> for &T {
    type Encoded = T;

    fn encoded(&self) -> &T {
        self
    }
}

impl<T: Serialize + ?Sized> EncodesAs<T> for &mut T {
    type Encoded = T;

    fn encoded(&self) -> &T {
        self
    }
}

impl EncodesAs<String> for &str {
    type Encoded = str;

    fn encoded(&self) -> &str {
        self
    }
}

impl EncodesAs<std::path::PathBuf> for &std::path::Path {
    type Encoded = std::path::Path;

    fn encoded(&self) -> &std::path::Path {
        self
    }
}

impl<T: Serialize> EncodesAs<Vec<T>> for &[T] {
    type Encoded = [T];

    fn encoded(&self) -> &[T] {
        self
    }
}

/// An array travels as the `Vec` it would collect into (a slice's encoding: serde writes an array
/// as a tuple, which some formats encode otherwise).
impl<T: Serialize, const N: usize> EncodesAs<Vec<T>> for [T; N] {
    type Encoded = [T];

    fn encoded(&self) -> &[T] {
        self
    }
}

impl<T: Serialize, const N: usize> EncodesAs<Vec<T>> for &[T; N] {
    type Encoded = [T];

    fn encoded(&self) -> &[T] {
        &self[..]
    }
}

#[cfg(test)]
mod tests {
    use super::EncodesAs;

    fn postcard<T: ?Sized>(value: impl EncodesAs<T>) -> Vec<u8> {
        postcard::to_stdvec(value.encoded()).expect("serializes")
    }

    #[test]
    fn every_form_encodes_as_the_owned_value() {
        let owned = postcard::<String>(String::from("ann"));
        assert_eq!(postcard::<String>("ann"), owned);
        assert_eq!(postcard::<String>(&String::from("ann")), owned);
        let owned = postcard::<Vec<u32>>(vec![1, 2, 3]);
        assert_eq!(postcard::<Vec<u32>>([1, 2, 3]), owned);
        assert_eq!(postcard::<Vec<u32>>(&[1, 2, 3]), owned);
        assert_eq!(postcard::<Vec<u32>>(&[1, 2, 3][..]), owned);
        assert_eq!(postcard::<u64>(7), postcard::<u64>(&7));
        let path = std::path::PathBuf::from("/tmp");
        assert_eq!(
            postcard::<std::path::PathBuf>(path.as_path()),
            postcard::<std::path::PathBuf>(&path)
        );
    }
}
