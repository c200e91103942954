//! The DPU firmware image.
//!
//! Every hart enters [`main`]; `mhartid` picks the role: cluster 0 core 0
//! runs the control-plane main loop, hart 1 the NVMe admin service, hart
//! 2 the network service, hart 3 firmware updates ([`fwupdate`]), hart 4
//! brings up the local SSDs ([`ssd`]), other
//! cluster-0 cores are reserved control-plane workers, every data-plane core (clusters 1-4) runs a
//! run-to-completion reactor. Control plane and reactors talk through SPSC
//! rings plus mailbox doorbells ([`channel`]). Booted from flash, the
//! configuration comes from there and an image on trial confirms itself
//! ([`boot`]).
#![no_std]
#![no_main]

mod block;
mod boot;
mod bootcfg;
mod channel;
mod net;
mod nvmf;
mod control;
mod fwupdate;
mod mgmt;
mod nvme;
mod random;
mod reactor;
mod ssd;

use dpu_rt::HartId;

dpu_rt::entry!(main);

fn main(hart: HartId) -> ! {
    if hart.is_control_plane() {
        defmt::info!("hart {=usize}: cluster {=usize} core {=usize}: role control-plane{=str}", hart.0, hart.cluster(), hart.core(), if hart.core() == 0 { " main" } else { " worker" });
        match hart.0 {
            0 => control::main(hart),
            nvme::ADMIN_HART => nvme::admin::run(hart),
            net::NET_HART => nvmf::service::run(hart),
            fwupdate::FW_HART => fwupdate::run(hart),
            ssd::SSD_HART => ssd::service::run(hart),
            _ => control::worker(hart),
        }
    } else {
        defmt::info!("hart {=usize}: cluster {=usize} core {=usize}: role data-plane reactor", hart.0, hart.cluster(), hart.core());
        reactor::run(hart)
    }
}
