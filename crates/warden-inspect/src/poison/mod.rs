//! The tool-poisoning scanner: hidden instructions and other hostile content in tool, prompt and
//! resource-template metadata.
