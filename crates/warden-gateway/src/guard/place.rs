//! Where a value lies inside a JSON document, as the guards walking it pass it down: built on
//! the stack at no cost, written out as an RFC 6901 pointer only where something is found.

/// A place in a JSON document.
#[derive(Clone, Copy)]
pub enum Place<'a> {
    /// The document itself.
    Root,
    /// A member of the object at the parent place.
    Key(&'a Place<'a>, &'a str),
    /// An element of the array at the parent place.
    Index(&'a Place<'a>, usize),
}

impl Place<'_> {
    /// The RFC 6901 pointer.
    pub fn pointer(&self) -> String {
        self.pointer_showing(str::to_owned)
    }

    /// The pointer with each key as `show` renders it (for example with secrets in it
    /// redacted), then escaped.
    pub fn pointer_showing(&self, show: impl Fn(&str) -> String + Copy) -> String {
        match self {
            Place::Root => String::new(),
            Place::Key(parent, key) => {
                format!("{}/{}", parent.pointer_showing(show), show(key).replace('~', "~0").replace('/', "~1"))
            }
            Place::Index(parent, i) => format!("{}/{i}", parent.pointer_showing(show)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Place;

    #[test]
    fn pointers_escape_keys() {
        let a = Place::Key(&Place::Root, "a/b~c");
        let b = Place::Index(&a, 3);
        assert_eq!(Place::Key(&b, "d").pointer(), "/a~1b~0c/3/d");
        assert_eq!(Place::Root.pointer(), "");
        assert_eq!(Place::Key(&Place::Root, "k").pointer_showing(|k| k.to_uppercase()), "/K");
    }
}
