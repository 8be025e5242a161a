//! A table's schema in the Delta log: the columns of its files (as polars
//! writes them) and then its partition columns, which live in the folder
//! names and the log, not in the files.

use deltalake_core::kernel::{ArrayType, DataType as DeltaType, StructField, StructType};
use polars::prelude::{DataType, Schema};

use crate::load::layout;

/// Why a column cannot be described in the Delta log.
#[derive(Debug, thiserror::Error)]
#[error("column {column} of type {dtype} has no Delta Lake type (a bug)")]
pub struct UnsupportedColumn {
    pub column: String,
    pub dtype: String,
}

fn delta_type(column: &str, dtype: &DataType) -> Result<DeltaType, UnsupportedColumn> {
    Ok(match dtype {
        DataType::String | DataType::Categorical(_, _) | DataType::Enum(_, _) => DeltaType::STRING,
        DataType::Int64 | DataType::UInt32 => DeltaType::LONG,
        DataType::Int32 | DataType::Int16 | DataType::Int8 => DeltaType::INTEGER,
        DataType::Boolean => DeltaType::BOOLEAN,
        DataType::Float64 => DeltaType::DOUBLE,
        DataType::Date => DeltaType::DATE,
        // Every timestamp of the warehouse is UTC (SPEC §4).
        DataType::Datetime(_, _) => DeltaType::TIMESTAMP,
        DataType::List(inner) => {
            DeltaType::Array(Box::new(ArrayType::new(delta_type(column, inner)?, true)))
        }
        other => {
            return Err(UnsupportedColumn {
                column: column.to_string(),
                dtype: other.to_string(),
            })
        }
    })
}

/// The Delta schema of `table` whose files have `columns`.
pub fn table_schema(table: &str, columns: &Schema) -> Result<StructType, UnsupportedColumn> {
    let mut fields = Vec::with_capacity(columns.len() + 2);
    for (name, dtype) in columns.iter() {
        fields.push(StructField::nullable(
            name.as_str(),
            delta_type(name, dtype)?,
        ));
    }
    for partition in layout::partition_columns(table) {
        let dtype = if *partition == layout::SNAPSHOT_DATE {
            DeltaType::DATE
        } else {
            DeltaType::STRING
        };
        fields.push(StructField::nullable(*partition, dtype));
    }
    StructType::try_new(fields).map_err(|error| UnsupportedColumn {
        column: table.to_string(),
        dtype: error.to_string(),
    })
}

/// `current` with the columns of `wanted` it lacks added at the end (columns
/// are only ever added: docs/schema.md), or `None` when it has them all.
pub fn widened(current: &StructType, wanted: &StructType) -> Option<StructType> {
    let missing: Vec<StructField> = wanted
        .fields()
        .filter(|f| current.field(f.name()).is_none())
        .cloned()
        .collect();
    if missing.is_empty() {
        return None;
    }
    StructType::try_new(current.fields().cloned().chain(missing)).ok()
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;

    #[test]
    fn files_columns_then_partition_columns() {
        let frame = df!("openid" => ["o"], "n" => [1i64]).unwrap();
        let schema = table_schema(layout::FOLLOWERS, frame.schema()).unwrap();
        let names: Vec<&str> = schema.fields().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["openid", "n", "snapshot_date", "account_id"]);
        let people = table_schema(layout::PEOPLE, frame.schema()).unwrap();
        assert_eq!(people.fields().count(), 3);
    }

    #[test]
    fn a_widened_schema_keeps_its_columns_first() {
        let old = df!("a" => ["x"]).unwrap();
        let new = df!("a" => ["x"], "b" => [1i64]).unwrap();
        let old = table_schema(layout::AUDIENCE, old.schema()).unwrap();
        let new = table_schema(layout::AUDIENCE, new.schema()).unwrap();
        let widened = widened(&old, &new).unwrap();
        let names: Vec<&str> = widened.fields().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["a", "snapshot_date", "b"]);
        assert!(super::widened(&widened, &old).is_none());
    }
}
