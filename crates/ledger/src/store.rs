//! The persistent store: redb, an embedded ACID key-value engine with
//! copy-on-write B-trees. A block, its receipts, its transaction index and
//! its state changes go into one write transaction committed with
//! `Durability::Immediate` (fsync), so after a crash at any instant the
//! database holds exactly the blocks whose commit returned, with matching state.

use gridledger_core::codec::{decode, encode};
use gridledger_core::{Hash32, Height};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use std::sync::Arc;

use crate::block::{Block, Receipt};
use crate::error::StoreError;
use crate::executor::ExecutedBlock;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const BLOCK_BY_HASH: TableDefinition<&[u8], u64> = TableDefinition::new("block_by_hash");
const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts");
const TX_INDEX: TableDefinition<&[u8], (u64, u32)> = TableDefinition::new("tx_index");
const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
/// Small records of the layers above (e.g. consensus votes that must
/// survive a crash), by name.
const AUX: TableDefinition<&str, &[u8]> = TableDefinition::new("aux");

const TIP: &str = "tip";
const GENESIS: &str = "genesis_hash";
/// Decoding bound for stored records (they were written by us; the bound
/// only stops a corrupted length from allocating without limit).
const MAX_RECORD: usize = 1 << 30;

/// A raw state entry: key and value bytes.
pub type StateEntry = (Vec<u8>, Vec<u8>);

/// Handle to the database; cheap to clone, safe to share across threads.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)?;
        let w = db.begin_write()?;
        {
            w.open_table(META)?;
            w.open_table(BLOCKS)?;
            w.open_table(BLOCK_BY_HASH)?;
            w.open_table(RECEIPTS)?;
            w.open_table(TX_INDEX)?;
            w.open_table(STATE)?;
            w.open_table(AUX)?;
        }
        w.commit()?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Height of the last committed block, if any.
    pub fn tip(&self) -> Result<Option<Height>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        match t.get(TIP)? {
            None => Ok(None),
            Some(v) => {
                let b: [u8; 8] =
                    v.value().try_into().map_err(|_| StoreError::Corrupt { table: "meta", detail: "tip".into() })?;
                Ok(Some(u64::from_le_bytes(b)))
            }
        }
    }

    pub fn genesis_hash(&self) -> Result<Option<Hash32>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        Ok(t.get(GENESIS)?.and_then(|v| v.value().try_into().ok().map(Hash32)))
    }

    /// Atomically appends a block with its receipts and state changes.
    pub fn commit(&self, ex: &ExecutedBlock) -> Result<(), StoreError> {
        self.commit_many(std::slice::from_ref(ex))
    }

    /// Atomically appends consecutive blocks in one write transaction: one
    /// fsync for all of them (group commit). Either all are durable or none.
    pub fn commit_many(&self, blocks: &[ExecutedBlock]) -> Result<(), StoreError> {
        let first = self.tip()?.map_or(0, |t| t + 1);
        for (expected, ex) in (first..).zip(blocks) {
            let h = ex.block.header.height;
            if h != expected {
                return Err(StoreError::NotNext { height: h, tip: expected.saturating_sub(1) });
            }
        }
        let Some(last) = blocks.last() else {
            return Ok(());
        };
        let w = self.db.begin_write()?;
        {
            let mut blocks_t = w.open_table(BLOCKS)?;
            let mut by_hash = w.open_table(BLOCK_BY_HASH)?;
            let mut receipts = w.open_table(RECEIPTS)?;
            let mut idx = w.open_table(TX_INDEX)?;
            let mut st = w.open_table(STATE)?;
            let mut meta = w.open_table(META)?;
            for ex in blocks {
                let h = ex.block.header.height;
                let hash = ex.block.hash();
                blocks_t.insert(h, encode(&ex.block).as_slice())?;
                by_hash.insert(&hash.0[..], h)?;
                receipts.insert(h, encode(&ex.receipts).as_slice())?;
                for (i, r) in ex.receipts.iter().enumerate() {
                    idx.insert(&r.tx_hash.0[..], (h, i as u32))?;
                }
                for (k, v) in &ex.changes {
                    match v {
                        Some(v) => {
                            st.insert(k.as_slice(), v.as_slice())?;
                        }
                        None => {
                            st.remove(k.as_slice())?;
                        }
                    }
                }
                if h == 0 {
                    meta.insert(GENESIS, &hash.0[..])?;
                }
            }
            meta.insert(TIP, &last.block.header.height.to_le_bytes()[..])?;
        }
        w.commit()?;
        Ok(())
    }

    /// Durably stores an auxiliary record (one fsync).
    pub fn put_aux(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let w = self.db.begin_write()?;
        w.open_table(AUX)?.insert(name, value)?;
        w.commit()?;
        Ok(())
    }

    pub fn get_aux(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(AUX)?;
        Ok(t.get(name)?.map(|v| v.value().to_vec()))
    }

    pub fn block(&self, h: Height) -> Result<Option<Block>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(BLOCKS)?;
        match t.get(h)? {
            None => Ok(None),
            Some(v) => decode(v.value(), MAX_RECORD)
                .map(Some)
                .map_err(|e| StoreError::Corrupt { table: "blocks", detail: e.to_string() }),
        }
    }

    pub fn height_of(&self, hash: &Hash32) -> Result<Option<Height>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(BLOCK_BY_HASH)?;
        Ok(t.get(&hash.0[..])?.map(|v| v.value()))
    }

    pub fn receipts(&self, h: Height) -> Result<Option<Vec<Receipt>>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(RECEIPTS)?;
        match t.get(h)? {
            None => Ok(None),
            Some(v) => decode(v.value(), MAX_RECORD)
                .map(Some)
                .map_err(|e| StoreError::Corrupt { table: "receipts", detail: e.to_string() }),
        }
    }

    /// Where a transaction was included: `(height, index)`.
    pub fn tx_location(&self, tx: &Hash32) -> Result<Option<(Height, u32)>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(TX_INDEX)?;
        Ok(t.get(&tx.0[..])?.map(|v| v.value()))
    }

    /// Every state entry, for rebuilding the in-memory state on start.
    pub fn state_entries(&self) -> Result<Vec<StateEntry>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(STATE)?;
        let mut out = Vec::with_capacity(t.len()? as usize);
        for e in t.iter()? {
            let (k, v) = e?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}
