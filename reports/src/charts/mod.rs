//! Charts of a run, drawn with plotters into SVG (inlined in index.html) and PNG (for PR comments): one module per
//! chart kind, all sharing [`style`].

pub mod bars;
pub mod growth;
pub mod style;
pub mod timeline;
