//! How many threads the kernels split work across.

/// Threads the kernels split work across: rayon's pool (every available core, or
/// `RAYON_NUM_THREADS`, or the pool a caller installed). Cheap to ask, unlike
/// `available_parallelism`, which reads the cgroup files on every call.
pub fn threads() -> usize {
    rayon::current_num_threads()
}
