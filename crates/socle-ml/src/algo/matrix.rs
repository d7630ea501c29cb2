//! A dense matrix of `f64`, row-major: the one numeric container the algorithms share.
//! Small on purpose (rows, columns, a `Vec`): the algorithms need row access, column
//! statistics and a few products, not a linear-algebra library.

use serde::{Deserialize, Serialize};

/// `rows × cols` values, row after row. A missing value is `f64::NAN` where an algorithm
/// accepts missing values (it says so); elsewhere every value is finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// From `data`, row after row; `None` when its length is not `rows × cols`.
    pub fn from_rows(rows: usize, cols: usize, data: Vec<f64>) -> Option<Self> {
        (data.len() == rows * cols).then_some(Self { rows, cols, data })
    }

    /// From a list of equally long rows; `None` when they differ in length.
    pub fn from_vecs(rows: &[Vec<f64>]) -> Option<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != cols) {
            return None;
        }
        Some(Self {
            rows: rows.len(),
            cols,
            data: rows.concat(),
        })
    }

    /// From columns of equal length; `None` when they differ.
    pub fn from_columns(columns: &[Vec<f64>]) -> Option<Self> {
        let rows = columns.first().map_or(0, Vec::len);
        if columns.iter().any(|c| c.len() != rows) {
            return None;
        }
        let cols = columns.len();
        let mut data = vec![0.0; rows * cols];
        for (j, c) in columns.iter().enumerate() {
            for (i, v) in c.iter().enumerate() {
                data[i * cols + j] = *v;
            }
        }
        Some(Self { rows, cols, data })
    }

    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.data[row * self.cols + col]
    }

    pub fn set(&mut self, row: usize, col: usize, value: f64) {
        self.data[row * self.cols + col] = value;
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Column `j`, copied.
    pub fn column(&self, j: usize) -> Vec<f64> {
        (0..self.rows).map(|i| self.get(i, j)).collect()
    }

    /// The rows at `indices`, in that order (a fold, a sample).
    pub fn select_rows(&self, indices: &[usize]) -> Self {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Self {
            rows: indices.len(),
            cols: self.cols,
            data,
        }
    }

    /// `self · v` (one value per row).
    pub fn mul_vec(&self, v: &[f64]) -> Vec<f64> {
        assert_eq!(v.len(), self.cols, "vector length");
        (0..self.rows).map(|i| dot(self.row(i), v)).collect()
    }

    /// `selfᵀ · v` (one value per column).
    pub fn t_mul_vec(&self, v: &[f64]) -> Vec<f64> {
        assert_eq!(v.len(), self.rows, "vector length");
        let mut out = vec![0.0; self.cols];
        for (i, vi) in v.iter().enumerate() {
            for (o, x) in out.iter_mut().zip(self.row(i)) {
                *o += x * vi;
            }
        }
        out
    }
}

/// The dot product of two equally long slices.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_columns_and_products() {
        let m = Matrix::from_vecs(&[vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]]).unwrap();
        assert_eq!((m.rows, m.cols), (3, 2));
        assert_eq!(m.row(1), &[3.0, 4.0]);
        assert_eq!(m.column(1), vec![2.0, 4.0, 6.0]);
        assert_eq!(m.mul_vec(&[1.0, 1.0]), vec![3.0, 7.0, 11.0]);
        assert_eq!(m.t_mul_vec(&[1.0, 0.0, 1.0]), vec![6.0, 8.0]);
        let c = Matrix::from_columns(&[vec![1.0, 3.0, 5.0], vec![2.0, 4.0, 6.0]]).unwrap();
        assert_eq!(c, m);
        assert_eq!(m.select_rows(&[2, 0]).data, vec![5.0, 6.0, 1.0, 2.0]);
        assert!(Matrix::from_vecs(&[vec![1.0], vec![1.0, 2.0]]).is_none());
    }
}
