//! The fake Boundary worker (to come).
