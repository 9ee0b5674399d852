//! The numbers the planner uses instead of names, each its own type so that
//! a function that takes a machine cannot be handed a unit or a pattern
//! (the counters take both, in one order).
//!
//! Units are numbered by name, machines by ID, patterns by first use in
//! name order, and machine classes as they are met. All are `u32` inside
//! (`#[repr(transparent)]`): at a million units the planner's arrays of
//! numbers are most of its memory, and a `usize` or an `Option` would
//! double them.

macro_rules! number {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(u32);

        impl $name {
            /// The `i`th; `i` fits in `u32` because the builder checks the
            /// input's size before numbering anything.
            pub fn new(i: usize) -> Self {
                Self(u32::try_from(i).unwrap_or(u32::MAX))
            }

            /// The `i`th, when `i` is below `limit` (at most what a `u32`
            /// holds): for numbers the input's size decides.
            #[allow(dead_code)]
            pub fn try_new(i: usize, limit: usize) -> Option<Self> {
                if i >= limit {
                    return None;
                }
                u32::try_from(i).ok().map(Self)
            }

            /// The index into an array by this kind of number.
            pub fn ix(self) -> usize {
                self.0 as usize
            }
        }
    };
}

number!(
    /// A unit, by its rank in name order.
    UnitNo
);
number!(
    /// A machine, by its rank in ID order.
    MachineNo
);
number!(
    /// An interned `Conflicts=` or `Replaces=` glob.
    PatternNo
);
number!(
    /// A group of machines that satisfy one `MachineMetadata=`
    /// requirement; class 0 holds every machine.
    ClassNo
);

impl UnitNo {
    /// Every unit of `n`, in name order.
    pub fn all(n: usize) -> impl DoubleEndedIterator<Item = Self> {
        (0..u32::try_from(n).unwrap_or(u32::MAX)).map(Self)
    }

    /// The bits of a key packed with a machine's.
    pub fn raw(self) -> u32 {
        self.0
    }
}

impl MachineNo {
    /// The bits of a key packed with a load or a unit.
    pub fn raw(self) -> u32 {
        self.0
    }

    /// Back from [`MachineNo::raw`].
    pub fn from_raw(raw: u32) -> Self {
        Self(raw)
    }
}

/// A `MachineNo` or none, in the four bytes of one: the planner keeps one
/// per unit (where it is assigned), so `Option<MachineNo>`'s eight would
/// cost megabytes at a million units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct MaybeMachine(u32);

impl MaybeMachine {
    pub const NONE: Self = MaybeMachine(u32::MAX);

    pub fn get(self) -> Option<MachineNo> {
        (self != Self::NONE).then_some(MachineNo(self.0))
    }
}

impl From<Option<MachineNo>> for MaybeMachine {
    fn from(m: Option<MachineNo>) -> Self {
        m.map_or(Self::NONE, |m| MaybeMachine(m.0))
    }
}
