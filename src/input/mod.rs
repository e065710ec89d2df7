//! Inputs: bytes in, blocks of whole lines out.
//!
//! [`reader::LineReader`] reads in large chunks and hands the matcher whole
//! lines at a time; [`passthrough::Passthrough`] copies the bytes read to
//! stdout, unchanged and in order.

pub mod passthrough;
pub mod reader;
