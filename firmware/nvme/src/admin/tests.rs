use super::*;
use crate::features::FID_ASYNC_EVENT_CONFIG;

struct Ctl {
    nn: u32,
    keep_alive: bool,
    slots: Option<SlotLog>,
}

impl Context for Ctl {
    fn identity(&self) -> ControllerIdentity<'_> {
        ControllerIdentity { vid: 1, ssvid: 1, serial: "S", model: "M", firmware: "F", cntlid: 7, subnqn: "nqn.x", acl: 0, aerl: 0, elpe: 0, firmware_update: false, mtfa: 0 }
    }
    fn identify_extra(&self, out: &mut [u8; 4096]) {
        out[4095] = 0xee;
    }
    fn max_nsid(&self) -> u32 {
        self.nn
    }
    fn namespace(&self, nsid: u32) -> Option<NamespaceInfo> {
        (nsid == 2).then_some(NamespaceInfo { nsid, blocks: 64, lba_shift: 9, nguid: [5; 16], eui64: [6; 8], deallocated_zeroes: true, shared: false })
    }
    fn health(&self) -> Health {
        Health { read_commands: 0x1234, ..Default::default() }
    }
    fn firmware_slots(&self) -> Option<SlotLog> {
        self.slots
    }
    fn limits(&self) -> Limits {
        Limits { max_io_queues: 8, vectors: 9 }
    }
    fn keep_alive(&self) -> bool {
        self.keep_alive
    }
}

const CTL: Ctl = Ctl { nn: 4, keep_alive: false, slots: None };

fn cmd(opcode: u8, cid: u16, nsid: u32, dws: &[(usize, u32)]) -> Sqe {
    let mut s = Sqe::ZERO;
    s.0[0] = opcode;
    s.0[2..4].copy_from_slice(&cid.to_le_bytes());
    s.set_dw(1, nsid);
    for &(i, v) in dws {
        s.set_dw(i, v);
    }
    s
}

fn identify(cns: u32, nsid: u32) -> Sqe {
    cmd(opc::IDENTIFY, 1, nsid, &[(10, cns)])
}

/// Get Log Page `lid` of `len` bytes (a dword multiple) from `offset`.
fn log(lid: u8, rae: bool, offset: u64, len: u32) -> Sqe {
    let numd = len / 4 - 1;
    let cdw10 = u32::from(lid) | u32::from(rae) << 15 | (numd & 0xffff) << 16;
    cmd(opc::GET_LOG_PAGE, 2, 0xffff_ffff, &[(10, cdw10), (11, numd >> 16), (12, offset as u32), (13, (offset >> 32) as u32)])
}

fn aer(cid: u16) -> Sqe {
    cmd(opc::ASYNC_EVENT_REQUEST, cid, 0, &[])
}

fn enable_ns_notices(st: &mut AdminState) {
    let r = st.serve(&CTL, &cmd(opc::SET_FEATURES, 3, 0, &[(10, u32::from(FID_ASYNC_EVENT_CONFIG)), (11, 1 << 8)]), &mut [0; 4096]);
    assert_eq!(r, Reply::ok(0));
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn identify_controller_takes_the_shared_limits_and_the_front_ends_fields() {
    let mut st = AdminState::INIT;
    let mut out = [0u8; 4096];
    assert_eq!(st.serve(&CTL, &identify(1, 0), &mut out), Reply::data(4096));
    assert_eq!((out[258], out[259], out[262]), (ACL, (AER_SLOTS - 1) as u8, (logs::ERROR_ENTRIES - 1) as u8), "ACL, AERL, ELPE");
    assert_eq!(u32_at(&out, 516), 4, "NN");
    assert_eq!(u16::from_le_bytes([out[78], out[79]]), 7, "CNTLID");
    assert_eq!(out[4095], 0xee, "transport fields written last");
    out.fill(0xff);
    assert_eq!(st.serve(&CTL, &cmd(opc::IDENTIFY, 1, 0, &[(10, 6)]), &mut out), Reply::data(4096), "CNS 06h, CSI NVM");
    assert!(out.iter().all(|&b| b == 0));
    assert_eq!(st.serve(&CTL, &cmd(opc::IDENTIFY, 1, 0, &[(10, 6), (11, 2 << 24)]), &mut out), Reply::status(Status::INVALID_FIELD), "CNS 06h of another command set");
}

/// An inactive NSID up to NN reads as a zero page; above NN (or 0) it
/// is Invalid Namespace; descriptors need an active namespace.
#[test]
fn inactive_nsid_page_versus_invalid_namespace() {
    let mut st = AdminState::INIT;
    let mut out = [0xffu8; 4096];
    assert_eq!(st.serve(&CTL, &identify(0, 2), &mut out), Reply::data(4096));
    assert_eq!(u64::from_le_bytes(out[0..8].try_into().unwrap()), 64, "NSZE of the active namespace");
    out.fill(0xff);
    assert_eq!(st.serve(&CTL, &identify(0, 3), &mut out), Reply::data(4096));
    assert!(out.iter().all(|&b| b == 0), "inactive: zeroes");
    assert_eq!(st.serve(&CTL, &identify(0, 5), &mut out), Reply::status(Status::INVALID_NAMESPACE), "above NN");
    assert_eq!(st.serve(&CTL, &identify(0, 0), &mut out), Reply::status(Status::INVALID_NAMESPACE));
    assert_eq!(st.serve(&CTL, &identify(3, 3), &mut out), Reply::status(Status::INVALID_NAMESPACE), "descriptors of an inactive one");
    assert_eq!(st.serve(&CTL, &identify(3, 2), &mut out), Reply::data(4096));
    assert_eq!((out[0], out[1], &out[4..12]), (1, 8, &[6u8; 8][..]));
    assert_eq!(st.serve(&CTL, &identify(2, 0), &mut out), Reply::data(4096));
    assert_eq!((u32_at(&out, 0), u32_at(&out, 4)), (2, 0), "active list");
    assert_eq!(st.serve(&CTL, &identify(2, 2), &mut out), Reply::data(4096));
    assert_eq!(u32_at(&out, 0), 0, "none above 2");
}

#[test]
fn log_pages_are_windowed_by_offset_and_length() {
    let mut st = AdminState::INIT;
    let mut out = [0u8; 4096];
    // SMART: Data Units Read at 32, Host Read Commands at 64.
    assert_eq!(st.serve(&CTL, &log(logs::LID_SMART, false, 64, 16), &mut out), Reply::data(16));
    assert_eq!(u32_at(&out, 0), 0x1234, "the window starts at the offset");
    assert!(out[16..].iter().all(|&b| b == 0), "nothing else");
    // A read past the page's end: the page's bytes, then zeroes; the
    // transfer is what was asked.
    assert_eq!(st.serve(&CTL, &log(logs::LID_SMART, false, 0, 8192), &mut out), Reply::data(8192));
    assert_eq!((out[3], u32_at(&out, 64)), (100, 0x1234));
    assert!(out[512..].iter().all(|&b| b == 0));
    // Error log: newest first, window into the second entry.
    st.record_error(0, 0x11, Status::INVALID_FIELD, 0);
    st.record_error(0, 0x22, Status::INVALID_FIELD, 0);
    assert_eq!(st.serve(&CTL, &log(logs::LID_ERROR, false, 64, 64), &mut out), Reply::data(64));
    assert_eq!((u32_at(&out, 0), u16::from_le_bytes([out[10], out[11]])), (1, 0x11), "the older entry");
    assert_eq!(st.serve(&CTL, &log(logs::LID_ERROR, false, 1024, 4), &mut out), Reply::status(Status::INVALID_FIELD), "offset past the page");
    assert_eq!(st.serve(&CTL, &log(logs::LID_FIRMWARE_SLOT, false, 0, 512), &mut out), Reply::status(Status::INVALID_LOG_PAGE), "no slot log here");
    let mut revisions = [None; 7];
    revisions[0] = Some(*b"1.2.3   ");
    let pf = Ctl { slots: Some(SlotLog { active: 1, next: None, revisions }), ..CTL };
    assert_eq!(st.serve(&pf, &log(logs::LID_FIRMWARE_SLOT, false, 8, 8), &mut out), Reply::data(8));
    assert_eq!(&out[..8], b"1.2.3   ");
}

#[test]
fn aers_are_held_up_to_the_limit() {
    let mut st = AdminState::INIT;
    let mut out = [0u8; 4096];
    for cid in 0..AER_SLOTS as u16 {
        assert_eq!(st.serve(&CTL, &aer(cid), &mut out), Reply::Held);
    }
    assert_eq!(st.held_aers(), AER_SLOTS);
    assert_eq!(st.serve(&CTL, &aer(9), &mut out), Reply::status(Status::AER_LIMIT_EXCEEDED));
    assert_eq!(st.held_aers(), AER_SLOTS, "the refused one is not held");
    assert_eq!(st.next_completion(), None, "no event");
    // Abort of a held AER: aborted (DW0 0), then it completes with
    // Command Abort Requested; of anything else: not aborted.
    assert_eq!(st.serve(&CTL, &cmd(opc::ABORT, 20, 0, &[(10, 2 << 16)]), &mut out), Reply::ok(0));
    assert_eq!(st.next_completion(), Some(AerCompletion { cid: 2, dw0: 0, status: Status::ABORT_REQUESTED }));
    assert_eq!(st.serve(&CTL, &cmd(opc::ABORT, 21, 0, &[(10, 2 << 16)]), &mut out), Reply::ok(1));
    assert_eq!(st.serve(&CTL, &cmd(opc::ABORT, 22, 0, &[(10, 5 << 16 | 1)]), &mut out), Reply::NotMine, "an I/O command: the front end's");
    assert_eq!(st.serve(&CTL, &aer(9), &mut out), Reply::Held, "a slot is free again");
    st.reset();
    assert_eq!(st.held_aers(), 0, "a reset ends them");
}

/// An event with no AER held waits; the next AER completes at once.
#[test]
fn an_event_waits_for_an_aer() {
    let mut st = AdminState::INIT;
    let mut out = [0u8; 4096];
    enable_ns_notices(&mut st);
    st.namespace_changed(3);
    assert!(!st.completion_due(), "nothing to complete without an AER");
    assert_eq!(st.next_completion(), None, "no AER yet");
    assert_eq!(st.serve(&CTL, &aer(40), &mut out), Reply::Held);
    assert!(st.completion_due());
    assert_eq!(st.next_completion(), Some(AerCompletion { cid: 40, dw0: 0x0004_0002, status: Status::SUCCESS }), "notice, info 00h, log page 04h");
    assert_eq!(st.next_completion(), None);
}

/// Reported once, a type stays masked until its log page is read with
/// RAE clear: the Changed Namespace List keeps collecting meanwhile.
#[test]
fn masked_until_the_log_is_read_with_rae_clear() {
    let mut st = AdminState::INIT;
    let mut out = [0u8; 4096];
    enable_ns_notices(&mut st);
    st.serve(&CTL, &aer(1), &mut out);
    st.serve(&CTL, &aer(2), &mut out);
    st.namespace_changed(5);
    assert_eq!(st.next_completion().map(|c| (c.cid, c.dw0)), Some((1, 0x0004_0002)));
    st.namespace_changed(2);
    assert_eq!(st.next_completion(), None, "masked: AER 2 stays held");
    assert!(st.masked(event_type::NOTICE));
    // RAE set: the list is read, nothing is cleared.
    assert_eq!(st.serve(&CTL, &log(logs::LID_CHANGED_NS, true, 0, 4096), &mut out), Reply::data(4096));
    assert_eq!((u32_at(&out, 0), u32_at(&out, 4), u32_at(&out, 8)), (2, 5, 0));
    assert!(st.masked(event_type::NOTICE));
    // RAE clear: list cleared, type unmasked; the next change is told.
    assert_eq!(st.serve(&CTL, &log(logs::LID_CHANGED_NS, false, 0, 4096), &mut out), Reply::data(4096));
    assert_eq!(u32_at(&out, 0), 2);
    assert!(!st.masked(event_type::NOTICE) && st.changed.is_empty());
    st.namespace_changed(7);
    assert_eq!(st.next_completion().map(|c| c.cid), Some(2));
    // An error event is another type: not masked by the notice.
    st.serve(&CTL, &aer(3), &mut out);
    assert_eq!(st.post_event(Event::error(1)), Some(AerCompletion { cid: 3, dw0: 0x0001_0100, status: Status::SUCCESS }));
}

/// Notices need the host's Asynchronous Event Configuration; error
/// events do not.
#[test]
fn notices_only_when_enabled() {
    let mut st = AdminState::INIT;
    let mut out = [0u8; 4096];
    st.serve(&CTL, &aer(1), &mut out);
    st.namespace_changed(4);
    assert_eq!(st.next_completion(), None, "notices not enabled");
    assert!(!st.changed.is_empty(), "the list still has it");
    assert_eq!(st.post_event(Event::error(0)).map(|c| c.dw0), Some(0x0001_0000));
}

#[test]
fn keep_alive_only_where_the_controller_has_it() {
    let mut st = AdminState::new(5000);
    let mut out = [0u8; 4096];
    let ka = cmd(opc::KEEP_ALIVE, 1, 0, &[]);
    let get = cmd(opc::GET_FEATURES, 2, 0, &[(10, u32::from(FID_KEEP_ALIVE_TIMER))]);
    let set = cmd(opc::SET_FEATURES, 3, 0, &[(10, u32::from(FID_KEEP_ALIVE_TIMER)), (11, 15_000)]);
    assert_eq!(st.serve(&CTL, &ka, &mut out), Reply::NotMine, "a PCIe controller: Invalid Opcode, the front end says");
    assert_eq!(st.serve(&CTL, &get, &mut out), Reply::status(Status::INVALID_FIELD));
    let fabrics = Ctl { keep_alive: true, ..CTL };
    assert_eq!(st.serve(&fabrics, &ka, &mut out), Reply::ok(0));
    assert_eq!(st.serve(&fabrics, &get, &mut out), Reply::ok(5000));
    assert_eq!(st.serve(&fabrics, &set, &mut out), Reply::ok(0));
    assert_eq!(st.kato_ms, 15_000);
    st.reset();
    assert_eq!(st.kato_ms, 15_000, "KATO outlives a reset");
    assert_eq!(st.serve(&fabrics, &cmd(0x81, 4, 0, &[]), &mut out), Reply::NotMine);
}
