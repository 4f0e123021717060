//! The autograd tape: nodes, leaf keys, and the reverse walk that accumulates gradients.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Identifies a leaf (a parameter or a variable) whose gradient is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeafKey(pub u64);

thread_local! {
    static NEXT_KEY: Cell<u64> = const { Cell::new(1) };
}

impl LeafKey {
    /// A key no other leaf in this thread has.
    pub fn fresh() -> LeafKey {
        NEXT_KEY.with(|k| {
            let v = k.get();
            k.set(v + 1);
            LeafKey(v)
        })
    }
}

type BackwardFn = Box<dyn Fn(&[f32], &[bool]) -> Vec<Option<Vec<f32>>>>;

pub(crate) struct Node {
    pub(crate) leaf: Option<LeafKey>,
    parents: Vec<Option<Rc<Node>>>,
    backward: Option<BackwardFn>,
}

impl Node {
    pub(crate) fn leaf(key: LeafKey) -> Rc<Node> {
        Rc::new(Node { leaf: Some(key), parents: Vec::new(), backward: None })
    }

    pub(crate) fn op(parents: Vec<Option<Rc<Node>>>, backward: BackwardFn) -> Rc<Node> {
        Rc::new(Node { leaf: None, parents, backward: Some(backward) })
    }
}

/// Gradients of a scalar w.r.t. the leaves it depends on.
#[derive(Debug, Default)]
pub struct Gradients {
    map: HashMap<LeafKey, Vec<f32>>,
}

impl Gradients {
    pub fn get(&self, key: LeafKey) -> Option<&[f32]> {
        self.map.get(&key).map(|v| v.as_slice())
    }

    /// Sets a leaf's gradient (for feeding optimizers gradients computed elsewhere).
    pub fn insert(&mut self, key: LeafKey, grad: Vec<f32>) {
        self.map.insert(key, grad);
    }

    /// Removes and returns a gradient (optimizers take ownership to avoid copies).
    pub fn take(&mut self, key: LeafKey) -> Option<Vec<f32>> {
        self.map.remove(&key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn accumulate(into: &mut HashMap<*const Node, Vec<f32>>, key: *const Node, g: Vec<f32>) {
    match into.get_mut(&key) {
        Some(acc) => acc.iter_mut().zip(&g).for_each(|(a, b)| *a += b),
        None => {
            into.insert(key, g);
        }
    }
}

pub(crate) fn backward(root: Option<&Rc<Node>>, seed: f32) -> Gradients {
    let mut out = Gradients::default();
    let Some(root) = root else { return out };

    // Topological order by iterative DFS (post-order).
    let mut order: Vec<Rc<Node>> = Vec::new();
    let mut seen: HashSet<*const Node> = HashSet::new();
    let mut stack: Vec<(Rc<Node>, bool)> = vec![(root.clone(), false)];
    while let Some((node, expanded)) = stack.pop() {
        if expanded {
            order.push(node);
            continue;
        }
        if !seen.insert(Rc::as_ptr(&node)) {
            continue;
        }
        stack.push((node.clone(), true));
        for p in node.parents.iter().flatten() {
            if !seen.contains(&Rc::as_ptr(p)) {
                stack.push((p.clone(), false));
            }
        }
    }

    let mut grads: HashMap<*const Node, Vec<f32>> = HashMap::new();
    grads.insert(Rc::as_ptr(root), vec![seed]);
    for node in order.iter().rev() {
        let Some(g) = grads.remove(&Rc::as_ptr(node)) else { continue };
        if let Some(key) = node.leaf {
            match out.map.get_mut(&key) {
                Some(acc) => acc.iter_mut().zip(&g).for_each(|(a, b)| *a += b),
                None => {
                    out.map.insert(key, g);
                }
            }
            continue;
        }
        let Some(backward) = &node.backward else { continue };
        let needs: Vec<bool> = node.parents.iter().map(|p| p.is_some()).collect();
        let parent_grads = backward(&g, &needs);
        for (parent, pg) in node.parents.iter().zip(parent_grads) {
            if let (Some(parent), Some(pg)) = (parent, pg) {
                accumulate(&mut grads, Rc::as_ptr(parent), pg);
            }
        }
    }
    out
}
