//! A single-threaded executor for host-model tasks. Tasks are polled only
//! when woken by simulated events, in wake order, so runs are deterministic.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

pub type Task = Pin<Box<dyn Future<Output = ()>>>;

struct TaskWaker {
    id: usize,
    queue: Arc<Mutex<VecDeque<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.lock().unwrap().push_back(self.id);
    }
}

#[derive(Default)]
pub struct Executor {
    tasks: Vec<Option<Task>>,
    wakers: Vec<Waker>,
    queue: Arc<Mutex<VecDeque<usize>>>,
}

impl Executor {
    /// Adds a task; it is polled at the next `run_ready`.
    pub fn spawn(&mut self, t: Task) {
        let id = self.tasks.len();
        self.tasks.push(Some(t));
        self.wakers.push(Waker::from(Arc::new(TaskWaker { id, queue: self.queue.clone() })));
        self.queue.lock().unwrap().push_back(id);
    }

    /// Polls woken tasks until none is ready; `more` supplies tasks spawned
    /// by running tasks. Returns how many polls ran.
    pub fn run_ready(&mut self, mut more: impl FnMut() -> Vec<Task>) -> usize {
        let mut polls = 0;
        loop {
            for t in more() {
                self.spawn(t);
            }
            let next = self.queue.lock().unwrap().pop_front();
            let Some(id) = next else { break };
            let Some(task) = self.tasks[id].as_mut() else { continue };
            let mut cx = Context::from_waker(&self.wakers[id]);
            polls += 1;
            if let Poll::Ready(()) = task.as_mut().poll(&mut cx) {
                self.tasks[id] = None;
            }
        }
        polls
    }

    /// Tasks not finished yet.
    pub fn live(&self) -> usize {
        self.tasks.iter().filter(|t| t.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn tasks_run_to_completion_in_order() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut ex = Executor::default();
        for i in 0..3 {
            let l = log.clone();
            ex.spawn(Box::pin(async move { l.borrow_mut().push(i) }));
        }
        ex.run_ready(Vec::new);
        assert_eq!(*log.borrow(), [0, 1, 2]);
        assert_eq!(ex.live(), 0);
    }
}
