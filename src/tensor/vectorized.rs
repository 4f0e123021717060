//! `vectorized!`: a function whose body is compiled for AVX-512F where the CPU has it, chosen at
//! run time, and as portable Rust elsewhere.

/// Defines `fn $name`: its body compiled for AVX-512F where the CPU has it (checked at run
/// time, `WIDE` true), as plain Rust elsewhere. The body's loops (and the small closures they
/// call, inlined into them) then vectorize 16 f32 wide; the operations are the same, so the
/// results are too. Bodies that need intrinsics branch on `WIDE`.
macro_rules! vectorized {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body<const WIDE: bool>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                body::<true>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, which is all `wide` is compiled for.
                return unsafe { wide($($arg),*) };
            }
            body::<false>($($arg),*)
        }
    };
}
pub(crate) use vectorized;
