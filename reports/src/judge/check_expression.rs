//! The verdict `check` grammar: what a reviewer writes in a spec, parsed into something the judge can evaluate.
//!
//! A spec's verdict is only worth as much as its expression is unambiguous, so every expression is parsed before a
//! single case runs (`check_specs`), and a typo is an error that points at the spec's line and column and lists
//! what would have been accepted. The four forms:
//!
//! - budget:  `<role>.<metric> <op> <number>[unit]`, e.g. `after.peak_heap_bytes <= 64MiB`
//! - claim:   `<role>.<metric> / <role>.<metric> <op> <number>`, e.g. `before.peak_heap_bytes / after.peak_heap_bytes >= 10`
//! - outcome: `<role>.outcome == <ok|failed|oom-killed|timed-out>` (or `!=`)
//! - growth:  `<role>.<metric> is flat` or `is linear`, optionally with the spec's own exponent thresholds:
//!   `is flat <= 0.1`, `is linear 0.9..1.1` (defaults in [`super::growth_fit`])
//!
//! `<metric>` is a case field of results.json, `metrics.<name>`, a figure the scenario reports itself, or
//! `phases.<name>.heap_bytes`, the bytes live when the case marked a phase: those names are only known once a case has
//! run, so any such name is accepted here and a missing one fails at judge time. Leak verdicts use the last two kinds
//! of figure: what a case still holds at its end (`after.end_heap_bytes <= 64KiB`, as pytest-memray's
//! `limit_leaks`), and the live heap after one phase against an earlier one
//! (`best.phases.restart.heap_bytes / best.phases.load.heap_bytes <= 1`, as dhat-rs's `curr_bytes` asserts).

use schema::results::{Case, Outcome};
use schema::results::{CaseField, VerdictKind};
use schema::spec::{Spec, VerdictSpec};

/// A figure of a case that a verdict can name.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// One of the case fields of results.json.
    Field(CaseField),
    /// `metrics.<name>`: a figure the scenario reported itself.
    Scenario(String),
    /// `phases.<name>.heap_bytes`: the bytes live when the case marked phase `<name>` (its first mark of that name;
    /// a space in a phase's name is written `_`). Leak verdicts hold one phase's figure against an earlier one's.
    PhaseHeap(String),
    /// A figure results.json records in a case's `tree`, `limit` or `dhat_run` block, by its path there
    /// ([`RECORDED_FIGURES`]): `tree.peak_pss_bytes` is the whole process tree's, a command's truest total.
    Recorded(&'static str),
}

/// The numeric figures of a case's `tree`, `limit` and `dhat_run` blocks a check can name, by their path in
/// results.json. A test keeps the list whole: every number those blocks serialise is here.
pub const RECORDED_FIGURES: [&str; 12] = [
    "tree.peak_pss_bytes",
    "tree.largest_process.peak_rss_bytes",
    "tree.most_processes",
    "tree.polls",
    "tree.pss_polls",
    "tree.mean_pss_poll_ms",
    "limit.poll_interval_ms",
    "limit.overshoot_bytes",
    "dhat_run.peak_heap_bytes",
    "dhat_run.total_alloc_bytes",
    "dhat_run.alloc_count",
    "dhat_run.wall_ms",
];

impl Metric {
    /// The name as a spec writes it (`peak_heap_bytes`, `metrics.trims_in_flight`).
    pub fn name(&self) -> String {
        match self {
            Metric::Field(field) => field.name().to_string(),
            Metric::Scenario(name) => format!("metrics.{name}"),
            Metric::PhaseHeap(name) => format!("phases.{name}.heap_bytes"),
            Metric::Recorded(path) => path.to_string(),
        }
    }

    /// The metric's value in a case; `None` when it is `null` or was not reported.
    pub fn value(&self, case: &Case) -> Option<f64> {
        match self {
            Metric::Field(field) => field.value(case),
            Metric::Scenario(name) => case.metrics.get(name).and_then(serde_json::Value::as_f64),
            Metric::PhaseHeap(name) => case
                .phases
                .iter()
                .find(|phase| phase.name.replace(' ', "_") == *name)
                .and_then(|phase| phase.heap_bytes)
                .map(|bytes| bytes as f64),
            Metric::Recorded(path) => {
                let (block, rest) = path.split_once('.')?;
                let value = match block {
                    "tree" => serde_json::to_value(case.tree.as_ref()?),
                    "limit" => serde_json::to_value(case.limit.as_ref()?),
                    "dhat_run" => serde_json::to_value(case.dhat_run.as_ref()?),
                    _ => return None,
                }
                .ok()?;
                value
                    .pointer(&format!("/{}", rest.replace('.', "/")))?
                    .as_f64()
            }
        }
    }

    /// Which figure of a dhat profile explains this metric, for the allocation sites under a failure; `None` for
    /// figures the heap profile does not explain (RSS, time, scenario metrics).
    pub fn site_ranking(&self) -> Option<crate::allocation_sites::SiteRanking> {
        use crate::allocation_sites::SiteRanking;
        match self {
            Metric::Field(CaseField::PeakHeapBytes) => Some(SiteRanking::BytesAtPeak),
            Metric::Field(CaseField::TotalAllocBytes) => Some(SiteRanking::TotalBytes),
            Metric::Field(CaseField::AllocCount) => Some(SiteRanking::TotalBlocks),
            Metric::Field(CaseField::EndHeapBytes) => Some(SiteRanking::BytesAtEnd),
            _ => None,
        }
    }

    /// Formats a value of this metric with its unit: bytes in binary units, time in ms or s, counts plain.
    pub fn format(&self, value: f64) -> String {
        let counts_bytes = match self {
            Metric::Field(CaseField::WallMs) => return format_milliseconds(value),
            Metric::Field(CaseField::AllocCount) => false,
            Metric::Field(_) => true,
            Metric::Scenario(name) if name.ends_with("_ms") => return format_milliseconds(value),
            Metric::Recorded(path) if path.ends_with("_ms") => return format_milliseconds(value),
            Metric::Scenario(name) => name.ends_with("_bytes"),
            Metric::Recorded(path) => path.ends_with("_bytes"),
            Metric::PhaseHeap(_) => true,
        };
        if counts_bytes {
            schema::units::format_bytes(value)
        } else {
            format_plain_number(value)
        }
    }
}

/// `850 ms`, `12.3 s`.
pub fn format_milliseconds(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.1} s", value / 1000.0)
    } else if value >= 1000.0 {
        format!("{:.2} s", value / 1000.0)
    } else {
        format!("{value:.0} ms")
    }
}

/// A count or ratio as a person reads it: integers whole, fractions with three significant decimals at most.
pub fn format_plain_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// A role's metric: `after.peak_heap_bytes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    pub role: String,
    pub metric: Metric,
}

impl std::fmt::Display for Operand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.role, self.metric.name())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    AtMost,
    Below,
    AtLeast,
    Above,
    Equal,
}

impl Comparison {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::AtMost => "<=",
            Comparison::Below => "<",
            Comparison::AtLeast => ">=",
            Comparison::Above => ">",
            Comparison::Equal => "==",
        }
    }

    pub fn holds(self, measured: f64, bound: f64) -> bool {
        match self {
            Comparison::AtMost => measured <= bound,
            Comparison::Below => measured < bound,
            Comparison::AtLeast => measured >= bound,
            Comparison::Above => measured > bound,
            Comparison::Equal => measured == bound,
        }
    }

    /// The words of a failure headline, pytest-memray style: "was limited to X but measured Y".
    pub fn failure_words(self) -> &'static str {
        match self {
            Comparison::AtMost => "was limited to",
            Comparison::Below => "was limited to below",
            Comparison::AtLeast => "was required to be at least",
            Comparison::Above => "was required to be above",
            Comparison::Equal => "was required to equal",
        }
    }
}

/// The shape a growth verdict expects, with its exponent thresholds: the defaults of
/// [`super::growth_fit::FLAT_MAX_EXPONENT`] and [`super::growth_fit::LINEAR_EXPONENT_RANGE`], or the spec's own
/// (`is flat <= 0.1`, `is linear 0.9..1.1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GrowthShape {
    Flat {
        max_exponent: f64,
    },
    Linear {
        min_exponent: f64,
        max_exponent: f64,
    },
}

impl GrowthShape {
    pub fn word(self) -> &'static str {
        match self {
            GrowthShape::Flat { .. } => "flat",
            GrowthShape::Linear { .. } => "linear",
        }
    }

    /// Whether a fitted exponent has this shape.
    pub fn admits(self, exponent: f64) -> bool {
        match self {
            GrowthShape::Flat { max_exponent } => exponent <= max_exponent,
            GrowthShape::Linear {
                min_exponent,
                max_exponent,
            } => (min_exponent..=max_exponent).contains(&exponent),
        }
    }

    /// The threshold in words: `exponent <= 0.25`, `exponent in 0.75..1.25`.
    pub fn threshold_words(self) -> String {
        match self {
            GrowthShape::Flat { max_exponent } => format!("exponent <= {max_exponent}"),
            GrowthShape::Linear {
                min_exponent,
                max_exponent,
            } => format!("exponent in {min_exponent}..{max_exponent}"),
        }
    }
}

/// A parsed `check`.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckExpression {
    Budget {
        operand: Operand,
        comparison: Comparison,
        /// The bound in the metric's own unit (bytes, ms, a count).
        bound: f64,
    },
    Claim {
        numerator: Operand,
        denominator: Operand,
        comparison: Comparison,
        bound: f64,
    },
    Outcome {
        role: String,
        /// `==` when true, `!=` when false.
        equal: bool,
        outcome: Outcome,
    },
    Growth {
        operand: Operand,
        shape: GrowthShape,
    },
}

impl CheckExpression {
    /// The kind word the expression's form belongs to.
    pub fn kind(&self) -> VerdictKind {
        match self {
            CheckExpression::Budget { .. } => VerdictKind::Budget,
            CheckExpression::Claim { .. } => VerdictKind::Claim,
            CheckExpression::Outcome { .. } => VerdictKind::Outcome,
            CheckExpression::Growth { .. } => VerdictKind::Growth,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    /// `after.peak_heap_bytes`, `is`, `flat`, `oom-killed`.
    Word,
    /// `64MiB`, `10`, `0.5`.
    Number,
    Slash,
    Operator,
}

#[derive(Debug, Clone)]
struct Token<'a> {
    kind: TokenKind,
    text: &'a str,
    /// Character offset in the check string, for the column of an error.
    column_offset: usize,
}

/// A parse error before it is placed in its spec: the character offset in `check` and what was expected.
struct ExpressionError {
    column_offset: usize,
    message: String,
}

fn error_at(column_offset: usize, message: impl Into<String>) -> ExpressionError {
    ExpressionError {
        column_offset,
        message: message.into(),
    }
}

const FORMS: &str = "`<role>.<metric> <op> <number>[unit]`, `<role>.<metric> / <role>.<metric> <op> <number>`, `<role>.outcome == <outcome>` or `<role>.<metric> is flat|linear`";

fn tokenize(check: &str) -> Result<Vec<Token<'_>>, ExpressionError> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = check.char_indices().collect();
    let mut index = 0;
    while index < chars.len() {
        let (start_byte, first) = chars[index];
        let start_index = index;
        let kind = if first.is_whitespace() {
            index += 1;
            continue;
        } else if first.is_ascii_alphabetic() || first == '_' {
            while index < chars.len()
                && (chars[index].1.is_ascii_alphanumeric() || "_.-".contains(chars[index].1))
            {
                index += 1;
            }
            TokenKind::Word
        } else if first.is_ascii_digit() || first == '.' {
            while index < chars.len()
                && (chars[index].1.is_ascii_alphanumeric() || "._".contains(chars[index].1))
            {
                index += 1;
            }
            TokenKind::Number
        } else if first == '/' {
            index += 1;
            TokenKind::Slash
        } else if "<>=!".contains(first) {
            index += 1;
            if index < chars.len() && chars[index].1 == '=' {
                index += 1;
            }
            TokenKind::Operator
        } else {
            return Err(error_at(
                start_index,
                format!("unexpected {first:?}: expected {FORMS}"),
            ));
        };
        let end_byte = chars.get(index).map_or(check.len(), |(byte, _)| *byte);
        tokens.push(Token {
            kind,
            text: &check[start_byte..end_byte],
            column_offset: start_index,
        });
    }
    Ok(tokens)
}

/// What a `<role>.<name>` token names: one of the role's numeric metrics, or its outcome (which only an outcome
/// verdict compares, with `==` or `!=`).
#[derive(Debug, Clone, PartialEq)]
enum ParsedOperand {
    Metric(Operand),
    Outcome { role: String },
}

impl ParsedOperand {
    fn metric(role: &str, metric: Metric) -> ParsedOperand {
        ParsedOperand::Metric(Operand {
            role: role.to_string(),
            metric,
        })
    }

    /// The operand of a numeric form (`form` names it for the error), which an outcome cannot be.
    fn into_metric(self, token: &Token, form: &str) -> Result<Operand, ExpressionError> {
        match self {
            ParsedOperand::Metric(operand) => Ok(operand),
            ParsedOperand::Outcome { .. } => Err(error_at(
                token.column_offset,
                format!(
                    "`outcome` only compares with == or != in an outcome verdict; {form} needs a numeric metric"
                ),
            )),
        }
    }
}

fn parse_operand(token: &Token, roles: &[&str]) -> Result<ParsedOperand, ExpressionError> {
    if token.kind != TokenKind::Word {
        return Err(error_at(
            token.column_offset,
            format!("expected `<role>.<metric>`, found {:?}", token.text),
        ));
    }
    let Some((role, metric)) = token.text.split_once('.') else {
        return Err(error_at(
            token.column_offset,
            format!("expected `<role>.<metric>`, found {:?}", token.text),
        ));
    };
    if !roles.contains(&role) {
        return Err(error_at(
            token.column_offset,
            format!(
                "unknown role {role:?}: expected one of {}",
                roles.join(", ")
            ),
        ));
    }
    let metric_column = token.column_offset + role.chars().count() + 1;
    if metric == "outcome" {
        return Ok(ParsedOperand::Outcome {
            role: role.to_string(),
        });
    }
    if let Some(field) = CaseField::ALL.into_iter().find(|f| f.name() == metric) {
        return Ok(ParsedOperand::metric(role, Metric::Field(field)));
    }
    if let Some(name) = metric.strip_prefix("metrics.")
        && !name.is_empty()
        && !name.contains('.')
    {
        return Ok(ParsedOperand::metric(
            role,
            Metric::Scenario(name.to_string()),
        ));
    }
    if let Some(name) = metric
        .strip_prefix("phases.")
        .and_then(|rest| rest.strip_suffix(".heap_bytes"))
        && !name.is_empty()
        && !name.contains('.')
    {
        return Ok(ParsedOperand::metric(
            role,
            Metric::PhaseHeap(name.to_string()),
        ));
    }
    if let Some(path) = RECORDED_FIGURES.into_iter().find(|path| *path == metric) {
        return Ok(ParsedOperand::metric(role, Metric::Recorded(path)));
    }
    let known: Vec<&str> = CaseField::ALL
        .iter()
        .map(|f| f.name())
        .chain(RECORDED_FIGURES)
        .collect();
    Err(error_at(
        metric_column,
        format!(
            "unknown metric {metric:?}: expected one of {}, metrics.<name> (a figure the scenario reports), phases.<name>.heap_bytes (live heap at a phase mark) or outcome",
            known.join(", ")
        ),
    ))
}

fn parse_comparison(token: &Token) -> Result<Comparison, ExpressionError> {
    let comparison = match (token.kind == TokenKind::Operator, token.text) {
        (true, "<=") => Comparison::AtMost,
        (true, "<") => Comparison::Below,
        (true, ">=") => Comparison::AtLeast,
        (true, ">") => Comparison::Above,
        (true, "==") => Comparison::Equal,
        _ => {
            return Err(error_at(
                token.column_offset,
                format!(
                    "expected a comparison (<=, <, >=, >, ==), found {:?}",
                    token.text
                ),
            ));
        }
    };
    Ok(comparison)
}

/// Reads `64MiB`, `1.5GB`, `30s`, `250ms`, `10`, `0.5` into the metric's own unit (bytes, ms, or the number).
fn parse_bound(token: &Token, metric: Option<&Metric>) -> Result<f64, ExpressionError> {
    const UNITS: &str =
        "a number with an optional unit: B, KB, MB, GB, KiB, MiB, GiB for bytes; ms, s for time";
    let bad = || {
        error_at(
            token.column_offset,
            format!("{:?} is not a bound: expected {UNITS}", token.text),
        )
    };
    if token.kind != TokenKind::Number {
        return Err(bad());
    }
    let split = token
        .text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(token.text.len());
    let (number_text, unit) = token.text.split_at(split);
    let number: f64 = number_text.replace('_', "").parse().map_err(|_| bad())?;
    if unit.is_empty() {
        return Ok(number);
    }
    let is_time = matches!(unit, "ns" | "us" | "ms" | "s" | "m" | "min" | "h");
    let is_wall_time = matches!(metric, Some(Metric::Field(CaseField::WallMs)));
    if is_time != is_wall_time {
        return Err(error_at(
            token.column_offset + number_text.chars().count(),
            format!(
                "unit {unit:?} does not fit {}: expected {}",
                metric.map_or("this metric".to_string(), Metric::name),
                if is_wall_time {
                    "a time unit (ms, s) or none"
                } else {
                    "a byte unit (B, KB, MB, GB, KiB, MiB, GiB) or none"
                }
            ),
        ));
    }
    if is_time {
        let duration = schema::units::parse_duration(token.text).map_err(|_| bad())?;
        Ok(duration.as_secs_f64() * 1000.0)
    } else {
        schema::units::parse_size(token.text)
            .map(|bytes| bytes as f64)
            .map_err(|_| bad())
    }
}

/// `flat` [`<= N`] or `linear` [`N..M`]: the shape and, optionally, the spec's own exponent thresholds.
fn parse_growth_shape(word: &Token, rest: &[Token]) -> Result<GrowthShape, ExpressionError> {
    use super::growth_fit::{FLAT_MAX_EXPONENT, LINEAR_EXPONENT_RANGE};
    let number = |token: &Token, text: &str| -> Result<f64, ExpressionError> {
        text.parse::<f64>().map_err(|_| {
            error_at(
                token.column_offset,
                format!(
                    "{:?} is not an exponent: expected a number such as 0.25",
                    token.text
                ),
            )
        })
    };
    let extra = |token: &Token| {
        error_at(
            token.column_offset,
            format!("unexpected {:?} after the end of the check", token.text),
        )
    };
    match word.text {
        "flat" => match rest {
            [] => Ok(GrowthShape::Flat {
                max_exponent: FLAT_MAX_EXPONENT,
            }),
            [operator, bound] if operator.kind == TokenKind::Operator && operator.text == "<=" => {
                Ok(GrowthShape::Flat {
                    max_exponent: number(bound, bound.text)?,
                })
            }
            [operator, ..] if operator.kind == TokenKind::Operator => Err(error_at(
                operator.column_offset,
                "a flat growth takes its threshold as `<= <exponent>`, e.g. `is flat <= 0.1`",
            )),
            [other, ..] => Err(extra(other)),
        },
        "linear" => match rest {
            [] => Ok(GrowthShape::Linear {
                min_exponent: LINEAR_EXPONENT_RANGE.0,
                max_exponent: LINEAR_EXPONENT_RANGE.1,
            }),
            [range] if range.kind == TokenKind::Number && range.text.contains("..") => {
                let (low, high) = range.text.split_once("..").expect("contains ..");
                let (min_exponent, max_exponent) = (number(range, low)?, number(range, high)?);
                if min_exponent > max_exponent {
                    return Err(error_at(
                        range.column_offset,
                        format!(
                            "the exponent range {:?} is empty: expected low..high",
                            range.text
                        ),
                    ));
                }
                Ok(GrowthShape::Linear {
                    min_exponent,
                    max_exponent,
                })
            }
            [range, ..] if range.kind == TokenKind::Number => Err(error_at(
                range.column_offset,
                "a linear growth takes its thresholds as `<low>..<high>`, e.g. `is linear 0.9..1.1`",
            )),
            [other, ..] => Err(extra(other)),
        },
        other => Err(error_at(
            word.column_offset,
            format!("unknown growth shape {other:?}: expected flat or linear"),
        )),
    }
}

fn parse_tokens(
    tokens: &[Token],
    roles: &[&str],
    end: usize,
) -> Result<CheckExpression, ExpressionError> {
    let Some(first) = tokens.first() else {
        return Err(error_at(0, format!("the check is empty: expected {FORMS}")));
    };
    let left = parse_operand(first, roles)?;
    let second = tokens.get(1).ok_or_else(|| {
        error_at(
            end,
            "expected a comparison (<=, <, >=, >, ==, !=), `/` or `is` after the metric",
        )
    })?;
    let expect_end = |index: usize| -> Result<(), ExpressionError> {
        match tokens.get(index) {
            None => Ok(()),
            Some(extra) => Err(error_at(
                extra.column_offset,
                format!("unexpected {:?} after the end of the check", extra.text),
            )),
        }
    };
    let missing = |what: &str| error_at(end, format!("the check ends early: expected {what}"));
    match (left, &second.kind, second.text) {
        (left, TokenKind::Word, "is") => {
            let operand = left.into_metric(first, "a growth verdict")?;
            let word = tokens.get(2).ok_or_else(|| missing("`flat` or `linear`"))?;
            let shape = parse_growth_shape(word, &tokens[3..])?;
            Ok(CheckExpression::Growth { operand, shape })
        }
        (left, TokenKind::Slash, _) => {
            let numerator = left.into_metric(first, "a claim")?;
            let right_token = tokens
                .get(2)
                .ok_or_else(|| missing("`<role>.<metric>` after `/`"))?;
            let denominator =
                parse_operand(right_token, roles)?.into_metric(right_token, "a claim")?;
            let comparison_token = tokens
                .get(3)
                .ok_or_else(|| missing("a comparison (<=, <, >=, >, ==)"))?;
            let comparison = parse_comparison(comparison_token)?;
            let bound_token = tokens.get(4).ok_or_else(|| missing("a number"))?;
            let bound = parse_bound(bound_token, None)?;
            expect_end(5)?;
            Ok(CheckExpression::Claim {
                numerator,
                denominator,
                comparison,
                bound,
            })
        }
        (ParsedOperand::Outcome { role }, TokenKind::Operator, _) => {
            let equal = match second.text {
                "==" => true,
                "!=" => false,
                other => {
                    return Err(error_at(
                        second.column_offset,
                        format!("an outcome compares with == or !=, found {other:?}"),
                    ));
                }
            };
            let word = tokens.get(2).ok_or_else(|| {
                missing("an outcome: ok, failed, oom-killed, over-limit, timed-out or interrupted")
            })?;
            let outcome = Outcome::parse(word.text).ok_or_else(|| {
                error_at(
                    word.column_offset,
                    format!(
                        "unknown outcome {:?}: expected one of ok, failed, oom-killed, over-limit, timed-out, interrupted",
                        word.text
                    ),
                )
            })?;
            expect_end(3)?;
            Ok(CheckExpression::Outcome {
                role,
                equal,
                outcome,
            })
        }
        (left, TokenKind::Operator, _) => {
            let comparison = parse_comparison(second)?;
            let operand = left.into_metric(first, "a budget")?;
            let bound_token = tokens.get(2).ok_or_else(|| missing("a number"))?;
            let bound = parse_bound(bound_token, Some(&operand.metric))?;
            expect_end(3)?;
            Ok(CheckExpression::Budget {
                operand,
                comparison,
                bound,
            })
        }
        _ => Err(error_at(
            second.column_offset,
            format!(
                "expected a comparison (<=, <, >=, >, ==, !=), `/` or `is`, found {:?}",
                second.text
            ),
        )),
    }
}

/// Parses one verdict's `check` and checks that its form matches its `kind`; errors read
/// `{spec path}:{line}:{col}: verdict {id}: {what was expected}`.
pub fn parse_verdict_check(spec: &Spec, verdict: &VerdictSpec) -> anyhow::Result<CheckExpression> {
    let place = |column_offset: usize| verdict.place(&spec.path, column_offset);
    let roles: Vec<&str> = spec.variants.iter().map(|v| v.role.as_str()).collect();
    let parsed = tokenize(&verdict.check)
        .and_then(|tokens| parse_tokens(&tokens, &roles, verdict.check.chars().count()));
    let expression = parsed.map_err(|error| {
        anyhow::anyhow!(
            "{}: verdict {}: {}",
            place(error.column_offset),
            verdict.id,
            error.message
        )
    })?;
    if expression.kind() != verdict.kind {
        anyhow::bail!(
            "{}: verdict {}: kind = {:?} but the check is written as a {} verdict: expected {}",
            place(0),
            verdict.id,
            verdict.kind.as_str(),
            expression.kind(),
            form_of_kind(verdict.kind)
        );
    }
    Ok(expression)
}

fn form_of_kind(kind: VerdictKind) -> &'static str {
    match kind {
        VerdictKind::Budget => "`<role>.<metric> <op> <number>[unit]`",
        VerdictKind::Claim => "`<role>.<metric> / <role>.<metric> <op> <number>`",
        VerdictKind::Outcome => "`<role>.outcome == <ok|failed|oom-killed|timed-out>`",
        _ => "`<role>.<metric> is flat` or `is linear`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::toy_spec::{toy_spec, verdict};
    use std::path::Path;

    /// Parses `expression` as the check of a verdict of `kind`; a position in an error is in the toy spec's line 16.
    fn check(kind: &str, expression: &str) -> Result<CheckExpression, String> {
        let profile = "[profiles.ci]\nsize = { name = \"items\", unit = \"items\", values = [10, 20, 40] }\n\n";
        let text = toy_spec(
            "toy",
            &[("before", "copy_all"), ("after", "stream")],
            &format!("{profile}{}", verdict("v", kind, "words", expression)),
        );
        let spec = Spec::parse(Path::new("scenarios/toy.toml"), &text).unwrap();
        parse_verdict_check(&spec, &spec.verdicts[0]).map_err(|e| e.to_string())
    }

    #[test]
    fn each_form_parses() {
        assert_eq!(
            check("budget", "after.peak_heap_bytes <= 64MiB").unwrap(),
            CheckExpression::Budget {
                operand: Operand {
                    role: "after".into(),
                    metric: Metric::Field(CaseField::PeakHeapBytes)
                },
                comparison: Comparison::AtMost,
                bound: 64.0 * 1024.0 * 1024.0,
            }
        );
        assert_eq!(
            check("budget", "after.wall_ms < 1.5s").unwrap(),
            CheckExpression::Budget {
                operand: Operand {
                    role: "after".into(),
                    metric: Metric::Field(CaseField::WallMs)
                },
                comparison: Comparison::Below,
                bound: 1500.0,
            }
        );
        assert_eq!(
            check(
                "claim",
                "before.peak_heap_bytes/after.metrics.held_bytes >= 10"
            )
            .unwrap(),
            CheckExpression::Claim {
                numerator: Operand {
                    role: "before".into(),
                    metric: Metric::Field(CaseField::PeakHeapBytes)
                },
                denominator: Operand {
                    role: "after".into(),
                    metric: Metric::Scenario("held_bytes".into())
                },
                comparison: Comparison::AtLeast,
                bound: 10.0,
            }
        );
        assert_eq!(
            check("growth", "after.peak_heap_bytes is flat <= 0.1").unwrap(),
            CheckExpression::Growth {
                operand: Operand {
                    role: "after".into(),
                    metric: Metric::Field(CaseField::PeakHeapBytes)
                },
                shape: GrowthShape::Flat { max_exponent: 0.1 }
            }
        );
        assert_eq!(
            check("growth", "after.total_alloc_bytes is linear 0.9..1.1").unwrap(),
            CheckExpression::Growth {
                operand: Operand {
                    role: "after".into(),
                    metric: Metric::Field(CaseField::TotalAllocBytes)
                },
                shape: GrowthShape::Linear {
                    min_exponent: 0.9,
                    max_exponent: 1.1
                }
            }
        );
        assert_eq!(
            check("outcome", "before.outcome != oom-killed").unwrap(),
            CheckExpression::Outcome {
                role: "before".into(),
                equal: false,
                outcome: Outcome::OomKilled
            }
        );
        assert_eq!(
            check("growth", "after.peak_heap_bytes is flat").unwrap(),
            CheckExpression::Growth {
                operand: Operand {
                    role: "after".into(),
                    metric: Metric::Field(CaseField::PeakHeapBytes)
                },
                shape: GrowthShape::Flat { max_exponent: 0.25 }
            }
        );
    }

    #[test]
    fn errors_point_at_the_token_and_list_what_is_valid() {
        // The check string starts at column 10 of line 16 (`check = "` is 9 characters).
        let cases = [
            (
                "budget",
                "later.peak_heap_bytes <= 1MiB",
                "scenarios/toy.toml:16:10: verdict v: unknown role \"later\": expected one of before, after",
            ),
            (
                "budget",
                "after.peak_heap <= 1MiB",
                "scenarios/toy.toml:16:16: verdict v: unknown metric \"peak_heap\": expected one of peak_heap_bytes, peak_rss_bytes, total_alloc_bytes, alloc_count, end_heap_bytes, wall_ms, tree.peak_pss_bytes, tree.largest_process.peak_rss_bytes, tree.most_processes, tree.polls, tree.pss_polls, tree.mean_pss_poll_ms, limit.poll_interval_ms, limit.overshoot_bytes, dhat_run.peak_heap_bytes, dhat_run.total_alloc_bytes, dhat_run.alloc_count, dhat_run.wall_ms, metrics.<name> (a figure the scenario reports), phases.<name>.heap_bytes (live heap at a phase mark) or outcome",
            ),
            (
                "budget",
                "after.peak_heap_bytes <= 64 mebibytes",
                "scenarios/toy.toml:16:38: verdict v: unexpected \"mebibytes\" after the end of the check",
            ),
            (
                "budget",
                "after.peak_heap_bytes <= 64parsecs",
                "scenarios/toy.toml:16:35: verdict v: \"64parsecs\" is not a bound: expected a number with an optional unit: B, KB, MB, GB, KiB, MiB, GiB for bytes; ms, s for time",
            ),
            (
                "budget",
                "after.peak_heap_bytes <= 5s",
                "scenarios/toy.toml:16:36: verdict v: unit \"s\" does not fit peak_heap_bytes: expected a byte unit (B, KB, MB, GB, KiB, MiB, GiB) or none",
            ),
            (
                "budget",
                "after.peak_heap_bytes =< 1MiB",
                "scenarios/toy.toml:16:32: verdict v: expected a comparison (<=, <, >=, >, ==), found \"=\"",
            ),
            (
                "claim",
                "before.peak_heap_bytes / after.peak_heap_bytes >=",
                "scenarios/toy.toml:16:59: verdict v: the check ends early: expected a number",
            ),
            (
                "outcome",
                "before.outcome == killed",
                "scenarios/toy.toml:16:28: verdict v: unknown outcome \"killed\": expected one of ok, failed, oom-killed, over-limit, timed-out, interrupted",
            ),
            (
                "growth",
                "after.peak_heap_bytes is quadratic",
                "scenarios/toy.toml:16:35: verdict v: unknown growth shape \"quadratic\": expected flat or linear",
            ),
            (
                "growth",
                "after.peak_heap_bytes is flat < 0.1",
                "scenarios/toy.toml:16:40: verdict v: a flat growth takes its threshold as `<= <exponent>`, e.g. `is flat <= 0.1`",
            ),
            (
                "growth",
                "after.peak_heap_bytes is linear 1.2..0.8",
                "scenarios/toy.toml:16:42: verdict v: the exponent range \"1.2..0.8\" is empty: expected low..high",
            ),
            (
                "budget",
                "before.peak_heap_bytes / after.peak_heap_bytes >= 10",
                "scenarios/toy.toml:16:10: verdict v: kind = \"budget\" but the check is written as a claim verdict: expected `<role>.<metric> <op> <number>[unit]`",
            ),
            (
                "budget",
                "after.peak_heap_bytes <= 1MiB; rm",
                "scenarios/toy.toml:16:39: verdict v: unexpected ';': expected `<role>.<metric> <op> <number>[unit]`, `<role>.<metric> / <role>.<metric> <op> <number>`, `<role>.outcome == <outcome>` or `<role>.<metric> is flat|linear`",
            ),
        ];
        for (kind, expression, expected) in cases {
            assert_eq!(
                check(kind, expression).unwrap_err(),
                expected,
                "{expression}"
            );
        }
    }

    #[test]
    fn metrics_format_with_their_units() {
        assert_eq!(
            Metric::Field(CaseField::PeakHeapBytes).format(3.0 * 1024.0 * 1024.0),
            "3.00 MiB"
        );
        assert_eq!(Metric::Field(CaseField::WallMs).format(850.4), "850 ms");
        assert_eq!(Metric::Field(CaseField::WallMs).format(1234.0), "1.23 s");
        assert_eq!(Metric::Field(CaseField::AllocCount).format(1200.0), "1200");
        assert_eq!(Metric::Scenario("ratio".into()).format(0.125), "0.125");
        assert_eq!(
            Metric::Scenario("held_bytes".into()).format(2048.0),
            "2.00 KiB"
        );
    }

    #[test]
    fn every_number_of_a_cases_tree_limit_and_profile_can_be_named_in_a_check() {
        use schema::results::{DhatRun, LimitReport, Outcome, ProcessPeak, TreeReport};
        fn numbers(prefix: &str, value: &serde_json::Value, into: &mut Vec<String>) {
            match value {
                serde_json::Value::Number(_) => into.push(prefix.to_string()),
                serde_json::Value::Object(fields) => {
                    for (name, field) in fields {
                        numbers(&format!("{prefix}.{name}"), field, into);
                    }
                }
                _ => {}
            }
        }
        let tree = TreeReport {
            peak_pss_bytes: Some(3 << 20),
            largest_process: Some(ProcessPeak {
                pid: 7,
                command: Some("server".into()),
                peak_rss_bytes: 2 << 20,
            }),
            most_processes: 2,
            polls: 10,
            pss_polls: 1,
            mean_pss_poll_ms: 0.5,
            ..TreeReport::default()
        };
        let limit = LimitReport {
            mechanism: "watchdog".into(),
            poll_interval_ms: 5.0,
            overshoot_bytes: 0,
            killed_by_watchdog: false,
        };
        let profile = DhatRun {
            outcome: Outcome::Ok,
            peak_heap_bytes: Some(1),
            total_alloc_bytes: Some(2),
            alloc_count: Some(3),
            wall_ms: 4.0,
            reason: None,
        };
        let mut found = Vec::new();
        numbers("tree", &serde_json::to_value(&tree).unwrap(), &mut found);
        numbers("limit", &serde_json::to_value(&limit).unwrap(), &mut found);
        numbers(
            "dhat_run",
            &serde_json::to_value(&profile).unwrap(),
            &mut found,
        );
        // A pid names a process; it is not a figure.
        found.retain(|path| !path.ends_with(".pid"));
        found.sort();
        let mut listed: Vec<String> = RECORDED_FIGURES.iter().map(|p| p.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed);
        // Each is read from the case it names.
        let mut case: Case = serde_json::from_value(serde_json::json!({
            "id": "s/r/n=1", "scenario": "s", "role": "r", "technique": null,
            "size": {"name": "n", "value": 1.0, "unit": "items"}, "outcome": "ok",
            "exit": {"code": 0, "signal": null, "message": null}, "limit_bytes": null, "limit": null,
            "peak_rss_bytes": null, "peak_heap_bytes": null, "total_alloc_bytes": null, "alloc_count": null,
            "end_heap_bytes": null, "wall_ms": 1.0, "timeline": [], "phases": [], "metrics": {},
            "dhat_file": null, "dhat_run": null
        }))
        .unwrap();
        assert_eq!(Metric::Recorded("tree.peak_pss_bytes").value(&case), None);
        case.tree = Some(tree);
        assert_eq!(
            Metric::Recorded("tree.peak_pss_bytes").value(&case),
            Some((3 << 20) as f64)
        );
        assert_eq!(
            Metric::Recorded("tree.largest_process.peak_rss_bytes").value(&case),
            Some((2 << 20) as f64)
        );
        assert_eq!(
            Metric::Recorded("tree.peak_pss_bytes").format((3 << 20) as f64),
            "3.00 MiB"
        );
    }
}
