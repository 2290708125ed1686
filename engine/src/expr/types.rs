//! The types FeedQL checks at bind time, so that a comparison of a text column with a number is
//! a 400 that names the column and the fix, not a cast error on every request.

use datafusion::arrow::datatypes::DataType;

/// A value's type as far as a query can know it before a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Num,
    Str,
    Bool,
    List,
    /// A literal NULL: fits anywhere.
    Null,
    /// Dates, times and types FeedQL does not reason about: not checked.
    Any,
}

impl Ty {
    /// The type of a stored column.
    pub fn of(data_type: &DataType) -> Ty {
        use DataType as D;
        match data_type {
            D::Int8
            | D::Int16
            | D::Int32
            | D::Int64
            | D::UInt8
            | D::UInt16
            | D::UInt32
            | D::UInt64
            | D::Float16
            | D::Float32
            | D::Float64
            | D::Decimal128(..)
            | D::Decimal256(..) => Ty::Num,
            D::Utf8 | D::LargeUtf8 | D::Utf8View => Ty::Str,
            D::Dictionary(_, v) => Ty::of(v),
            D::Boolean => Ty::Bool,
            D::List(_) | D::LargeList(_) | D::FixedSizeList(..) | D::ListView(_) => Ty::List,
            D::Null => Ty::Null,
            _ => Ty::Any,
        }
    }

    /// In words, for messages: "a number", "text".
    pub fn words(self) -> &'static str {
        match self {
            Ty::Num => "a number",
            Ty::Str => "text",
            Ty::Bool => "true or false",
            Ty::List => "a list",
            Ty::Null => "null",
            Ty::Any => "a value",
        }
    }

    /// Whether values of the two types can be compared without a cast that fails on data.
    pub fn comparable(self, other: Ty) -> bool {
        matches!(
            (self, other),
            (Ty::Null | Ty::Any, _) | (_, Ty::Null | Ty::Any)
        ) || self == other
    }

    /// Whether a value of this type fits where `wanted` is expected.
    pub fn fits(self, wanted: Ty) -> bool {
        self.comparable(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_types_map_to_feedql_types() {
        assert_eq!(Ty::of(&DataType::Int64), Ty::Num);
        assert_eq!(Ty::of(&DataType::Utf8View), Ty::Str);
        assert_eq!(
            Ty::of(&DataType::Dictionary(
                Box::new(DataType::Int32),
                Box::new(DataType::Utf8)
            )),
            Ty::Str
        );
        assert!(Ty::Num.comparable(Ty::Null));
        assert!(!Ty::Num.comparable(Ty::Str));
    }
}
