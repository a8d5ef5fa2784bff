//! One declaration per technique enum: each model names its techniques (the names specs map roles to) once, and
//! `ALL`, `NAMES`, `name()` and `from_name()` follow from it, instead of the names typed in a `match`, a lookup and
//! again in each scenario's `techniques()`.
//!
//! A `macro_rules!` rather than `strum`'s derives: the four things needed are a dozen lines, and the models crate
//! stays without a proc-macro dependency of its own.

/// Declares `enum NAME { Variant => "spec_name", … }` with `ALL` (every variant, in order), `NAMES` (their spec
/// names, same order), `name()` and `from_name()`.
#[macro_export]
macro_rules! technique_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every technique, in the order reports list them.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            /// The names specs use, in the order of [`Self::ALL`].
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            /// The name specs use.
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The technique a spec names.
            pub fn from_name(name: &str) -> Option<$name> {
                Self::ALL.into_iter().find(|technique| technique.name() == name)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    technique_enum! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Toy {
            /// A doc comment is kept.
            First => "first_way",
            Second => "second_way",
        }
    }

    #[test]
    fn names_and_variants_map_both_ways_in_order() {
        assert_eq!(Toy::ALL, [Toy::First, Toy::Second]);
        assert_eq!(Toy::NAMES, ["first_way", "second_way"]);
        assert_eq!(Toy::Second.name(), "second_way");
        assert_eq!(Toy::from_name("first_way"), Some(Toy::First));
        assert_eq!(Toy::from_name("First"), None);
    }
}
