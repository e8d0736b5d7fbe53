//! RFC 8785 (JSON Canonicalization Scheme) serialization and the definition hashes pins are made of.
