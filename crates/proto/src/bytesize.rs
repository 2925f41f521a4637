//! Byte counts as people write them on the command line (`64M`, `1GiB`).
