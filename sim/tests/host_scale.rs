//! The host model's cost per I/O stays flat when far more submitters than
//! queue slots wait for space (64 jobs x 8 VFs x depth 255 used to crawl:
//! every completion woke every waiter).

mod common;
use common::fw::{opts, pf, run_host};
use dpu_sim::host::nvme::{opc, DataBuf, DriverOptions, Sqe};
use std::cell::Cell;
use std::rc::Rc;

#[test]
fn waiting_submitters_cost_polls_per_io_not_per_waiter() {
    const SUBMITTERS: u32 = 1000;
    const EACH: u32 = 2;
    let done = Rc::new(Cell::new(0u32));
    let d2 = done.clone();
    let m = run_host(&[(0, 1, 1 << 20, 512)], move |h| async move {
        // No host CPU time per submission: taking a slot is then atomic
        // with finding it free, so only waiting for space is measured.
        let o = DriverOptions { io_queues: 1, submit_ns: 0, complete_ns: 0, ..opts() };
        let c = pf(&h, o).await?;
        let qid = c.io_qids()[0];
        for i in 0..SUBMITTERS {
            let (h2, c2, d3) = (h.clone(), c.clone(), d2.clone());
            h.spawn(async move {
                let buf = DataBuf::alloc(&h2, 4096, 0);
                for k in 0..EACH {
                    let lba = u64::from((i * EACH + k) % 256) * 8;
                    let sqe = Sqe::new(opc::READ).nsid(1).cdw(10, lba as u32).cdw(12, 7);
                    if c2.data_command(qid, sqe, &buf).await.is_ok() {
                        d3.set(d3.get() + 1);
                    }
                }
            });
        }
        while d2.get() < SUBMITTERS * EACH {
            h.sleep(h.cycles(10_000)).await;
        }
        Ok(())
    });
    let ios = u64::from(done.get());
    let polls = m.host.as_ref().unwrap().polls;
    assert_eq!(ios, u64::from(SUBMITTERS * EACH));
    // Each I/O polls its submitter a handful of times (space, DMA-visible
    // writes, completion); waking all 1000 waiters per completion made it
    // about 2000.
    assert!(polls < 40 * ios, "{polls} polls for {ios} I/Os");
}
