//! Devices by name: `cpu`, `cuda`, `cuda:N`. Names only; what runs on a GPU is `crate::cuda`,
//! and the GPU-against-CPU checks are `crate::cuda::check`.

use crate::error::{Error, Result};
/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum DeviceName {
    #[default]
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceName {
    type Err = Error;

    fn from_str(s: &str) -> Result<DeviceName> {
        match s {
            "cpu" => Ok(DeviceName::Cpu),
            "cuda" => Ok(DeviceName::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceName::Cuda(n)),
                _ => Err(Error::invalid("device", format!("unknown device '{s}': use cpu, cuda or cuda:N (N = the GPU's number)"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!("cpu".parse::<DeviceName>().unwrap(), DeviceName::Cpu);
        assert_eq!("cuda".parse::<DeviceName>().unwrap(), DeviceName::Cuda(0));
        assert_eq!("cuda:2".parse::<DeviceName>().unwrap(), DeviceName::Cuda(2));
        let e = "gpu".parse::<DeviceName>().unwrap_err().to_string();
        assert!(e.contains("'gpu'") && e.contains("cuda:N"), "{e}");
    }
}
