//! The fake Boundary controller (to come).
