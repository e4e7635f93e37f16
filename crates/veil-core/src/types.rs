//! Domain newtypes.
