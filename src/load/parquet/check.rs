//! A Parquet file from outside (a login export) checked before polars reads
//! it. polars trusts what a file states and allocates for it: a footer list
//! whose length had been made huge had it reserve 34.9 GB, a page whose
//! value count had been made negative 2^61 bytes, and a failed allocation
//! ends the process (both found by `make fuzz`). So the footer and every
//! page header are walked here first, as Thrift's compact protocol, without
//! building anything: every length they state must fit in the bytes left,
//! every page in its column chunk, every column chunk in the file.

/// The largest page, compressed or not: ours are under 1 MiB, and pages are
/// meant to be about that size.
const MOST_PAGE_BYTES: i64 = 256 << 20;

/// The deepest nesting of Thrift structs and lists walked: Parquet's footer
/// needs about 8.
const MOST_DEPTH: usize = 32;

/// Checks `file` (whole) and returns why it cannot be read safely.
pub fn check_file(file: &[u8]) -> Result<(), String> {
    let footer = footer(file)?;
    Walk::new(footer).value(STRUCT, 0, &mut |_, _| {})?;
    let metadata = polars_parquet::parquet::read::read_metadata(&mut std::io::Cursor::new(file))
        .map_err(|err| err.to_string())?;
    for group in &metadata.row_groups {
        let rows = group.num_rows();
        if rows > i64::MAX as usize {
            return Err("a row group of a negative number of rows".to_string());
        }
        for column in group.parquet_columns() {
            let name = column.descriptor().path_in_schema.join(".");
            let flat = column.descriptor().descriptor.max_rep_level == 0;
            // Where polars starts reading the chunk.
            let start = column
                .dictionary_page_offset()
                .unwrap_or(column.data_page_offset());
            let end = start.checked_add(column.compressed_size());
            let chunk = match end {
                Some(end) if start >= 0 && start <= end && end as u64 <= file.len() as u64 => {
                    &file[start as usize..end as usize]
                }
                _ => return Err(format!("column `{name}` lies outside the file")),
            };
            let values = pages(chunk, &name)?;
            if flat && values != rows as i64 {
                return Err(format!(
                    "the pages of column `{name}` hold {values} values for {rows} rows"
                ));
            }
        }
    }
    Ok(())
}

/// The footer: the Thrift struct before the file's last 8 bytes (its length
/// and `PAR1`).
fn footer(file: &[u8]) -> Result<&[u8], String> {
    let Some(tail) = file.len().checked_sub(8).map(|at| &file[at..]) else {
        return Err("too short for a Parquet file".to_string());
    };
    if &tail[4..] != b"PAR1" {
        return Err("no Parquet footer".to_string());
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    let end = file.len() - 8;
    match end.checked_sub(len) {
        Some(start) => Ok(&file[start..end]),
        None => Err("a footer longer than the file".to_string()),
    }
}

/// Walks the pages of one column chunk; returns the values its data pages
/// hold.
fn pages(chunk: &[u8], name: &str) -> Result<i64, String> {
    let mut at = 0;
    let mut values = 0i64;
    while at < chunk.len() {
        let mut header = PageHeader::default();
        let mut walk = Walk::new(&chunk[at..]);
        walk.value(STRUCT, 0, &mut |path, value| header.take(path, value))?;
        let body = header.compressed;
        if !(0..=MOST_PAGE_BYTES).contains(&body)
            || !(0..=MOST_PAGE_BYTES).contains(&header.uncompressed)
        {
            return Err(format!("a page of column `{name}` of a wrong size"));
        }
        if header.num_values < 0 {
            return Err(format!(
                "a page of column `{name}` of a negative value count"
            ));
        }
        if header.is_data {
            values += header.num_values;
        }
        at += walk.at;
        if (chunk.len() - at) < body as usize {
            return Err(format!("a page of column `{name}` runs past its column"));
        }
        at += body as usize;
    }
    Ok(values)
}

/// What a page header states that the check needs.
#[derive(Default)]
struct PageHeader {
    uncompressed: i64,
    compressed: i64,
    num_values: i64,
    is_data: bool,
}

impl PageHeader {
    /// Takes an integer at `path` (field ids from the header down).
    fn take(&mut self, path: &[i16], value: i64) {
        match path {
            [2] => self.uncompressed = value,
            [3] => self.compressed = value,
            // The data page header (v1 and v2) and the dictionary page header.
            [5, 1] | [8, 1] => {
                self.num_values = value;
                self.is_data = true;
            }
            [7, 1] => self.num_values = value,
            _ => {}
        }
    }
}

// Thrift's compact protocol types.
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const STRUCT: u8 = 12;

/// A walk over Thrift compact-protocol bytes.
struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The field ids from the outer struct to the field being read.
    path: Vec<i16>,
}

impl<'a> Walk<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Walk {
            bytes,
            at: 0,
            path: Vec::new(),
        }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self.bytes.get(self.at).ok_or("a Thrift value cut short")?;
        self.at += 1;
        Ok(byte)
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        if n > self.left() as u64 {
            return Err(format!(
                "a Thrift length of {n} with {} bytes left",
                self.left()
            ));
        }
        self.at += n as usize;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a Thrift varint of more than 10 bytes".to_string())
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let raw = self.varint()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// A collection of `n` elements: each takes at least a byte.
    fn count(&mut self, n: u64) -> Result<u64, String> {
        if n > self.left() as u64 {
            return Err(format!(
                "a Thrift collection of {n} elements with {} bytes left",
                self.left()
            ));
        }
        Ok(n)
    }

    /// Walks one value of type `kind`, giving every integer and its path to
    /// `found`.
    fn value(
        &mut self,
        kind: u8,
        depth: usize,
        found: &mut dyn FnMut(&[i16], i64),
    ) -> Result<(), String> {
        if depth > MOST_DEPTH {
            return Err("Thrift values nested too deep".to_string());
        }
        match kind {
            BOOL_TRUE | BOOL_FALSE => Ok(()),
            3 => self.skip(1),
            4..=6 => {
                let value = self.zigzag()?;
                found(&self.path, value);
                Ok(())
            }
            7 => self.skip(8),
            8 => {
                let len = self.varint()?;
                self.skip(len)
            }
            9 | 10 => {
                let header = self.byte()?;
                let element = header & 0x0f;
                let n = match header >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                for _ in 0..self.count(n)? {
                    self.element(element, depth, found)?;
                }
                Ok(())
            }
            11 => {
                let n = self.varint()?;
                if n == 0 {
                    return Ok(());
                }
                let kinds = self.byte()?;
                for _ in 0..self.count(n)? {
                    self.element(kinds >> 4, depth, found)?;
                    self.element(kinds & 0x0f, depth, found)?;
                }
                Ok(())
            }
            STRUCT => {
                let mut id = 0i16;
                loop {
                    let header = self.byte()?;
                    if header == 0 {
                        return Ok(());
                    }
                    id = match header >> 4 {
                        0 => i16::try_from(self.zigzag()?).map_err(|_| "a Thrift field id")?,
                        delta => id.wrapping_add(i16::from(delta)),
                    };
                    self.path.push(id);
                    let walked = self.value(header & 0x0f, depth + 1, found);
                    self.path.pop();
                    walked?;
                }
            }
            13 => self.skip(16),
            other => Err(format!("an unknown Thrift type {other}")),
        }
    }

    /// An element of a list, set or map: a bool is a byte of its own there.
    fn element(
        &mut self,
        kind: u8,
        depth: usize,
        found: &mut dyn FnMut(&[i16], i64),
    ) -> Result<(), String> {
        match kind {
            BOOL_TRUE | BOOL_FALSE => self.skip(1),
            kind => self.value(kind, depth + 1, found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Parquet file as polars writes it, of `rows` rows.
    fn written(rows: usize) -> Vec<u8> {
        use polars::prelude::*;
        let ids: Vec<String> = (0..rows).map(|i| format!("o{i:027}")).collect();
        let mut frame = df!("openid" => ids.clone(), "unionid" => ids).unwrap();
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut frame).unwrap();
        bytes
    }

    #[test]
    fn files_polars_writes_pass() {
        for rows in [0, 1, 10_000] {
            check_file(&written(rows)).unwrap();
        }
    }

    #[test]
    fn a_list_longer_than_the_footer_is_refused_before_polars_reads_it() {
        // A footer whose field 1 is a list (header 0x19) of 15 or more
        // structs (0xfc), 2^40 of them by the varint that follows.
        let footer = [0x19, 0xfc, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00];
        let mut file = b"PAR1".to_vec();
        file.extend(footer);
        file.extend((footer.len() as u32).to_le_bytes());
        file.extend(b"PAR1");
        let err = check_file(&file).unwrap_err();
        assert!(
            err.contains("a Thrift collection of 1099511627776 elements"),
            "{err}"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut bytes = vec![0x1c; 100]; // field 1, a struct, 100 deep
        bytes.push(0);
        let err = Walk::new(&bytes)
            .value(STRUCT, 0, &mut |_, _| {})
            .unwrap_err();
        assert!(err.contains("too deep"), "{err}");
    }
}
