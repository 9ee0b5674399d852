//! OWNER NOTE: to be implemented (specifier).
