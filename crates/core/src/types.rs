//! Core value types. Money and energy are integers (DESIGN.md principle 4):
//! [`Amount`] counts minor units, [`Energy`] counts watt-hours.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

macro_rules! hex_bytes_type {
    ($(#[$m:meta])* $name:ident, $len:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; $len]);

        impl Default for $name {
            fn default() -> Self {
                Self::ZERO
            }
        }

        impl $name {
            pub const LEN: usize = $len;
            pub const ZERO: Self = Self([0u8; $len]);

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses `0x`-prefixed or bare hex of exactly the right length.
            pub fn from_hex(s: &str) -> Result<Self, ParseError> {
                let s = s.strip_prefix("0x").unwrap_or(s);
                let v = hex::decode(s).map_err(|_| ParseError::Hex)?;
                let arr: [u8; $len] = v
                    .try_into()
                    .map_err(|v: Vec<u8>| ParseError::Length { expected: $len, got: v.len() })?;
                Ok(Self(arr))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(0x{})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::from_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as Deserialize>::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_bytes_type!(
    /// A 32-byte SHA-256 digest.
    Hash32,
    32
);
hex_bytes_type!(
    /// An account address: the last 20 bytes of the tagged SHA-256 of the
    /// account's compressed secp256k1 public key (see [`crate::crypto::PublicKey::address`]).
    Address,
    20
);

hex_bytes_type!(
    /// A compressed secp256k1 public key (33 bytes). Validity is checked when
    /// it is used, so decoding never fails on a well-sized key.
    PublicKey,
    33
);
hex_bytes_type!(
    /// A compact (r ‖ s) ECDSA signature with low-S, 64 bytes.
    Signature,
    64
);
hex_bytes_type!(
    /// A compact ECDSA signature plus its recovery id (r ‖ s ‖ v), 65 bytes.
    RecoverableSignature,
    65
);

/// Why a textual value failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid hex")]
    Hex,
    #[error("expected {expected} bytes, got {got}")]
    Length { expected: usize, got: usize },
    #[error("invalid number")]
    Number,
}

macro_rules! int_newtype {
    ($(#[$m:meta])* $name:ident, $inner:ty) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub $inner);

        impl $name {
            pub const ZERO: Self = Self(0);
            pub const MAX: Self = Self(<$inner>::MAX);

            pub fn checked_add(self, o: Self) -> Option<Self> {
                self.0.checked_add(o.0).map(Self)
            }
            pub fn checked_sub(self, o: Self) -> Option<Self> {
                self.0.checked_sub(o.0).map(Self)
            }
            pub fn saturating_sub(self, o: Self) -> Self {
                Self(self.0.saturating_sub(o.0))
            }
            pub fn is_zero(self) -> bool {
                self.0 == 0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                s.parse::<$inner>().map(Self).map_err(|_| ParseError::Number)
            }
        }
    };
}

int_newtype!(
    /// Money in integer minor units (e.g. 1/1000 of a coin). Serialised as a
    /// decimal string in JSON so no client ever rounds it through a float.
    Amount,
    u128
);
int_newtype!(
    /// Energy in integer watt-hours.
    Energy,
    u64
);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            S(String),
            N(u64),
        }
        match <Repr as Deserialize>::deserialize(d)? {
            Repr::S(s) => s.parse().map_err(serde::de::Error::custom),
            Repr::N(n) => Ok(Amount(n as u128)),
        }
    }
}

impl Serialize for Energy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Energy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <u64 as Deserialize>::deserialize(d).map(Energy)
    }
}

/// Block height (genesis is 0).
pub type Height = u64;
/// Consensus or billing epoch number.
pub type Epoch = u64;
/// Milliseconds since the Unix epoch. Blocks carry it; contracts read time
/// only through the block's timestamp, never a local clock.
pub type Timestamp = u64;
/// Identifies one chain instance (primary, secondary, BoB, external ...).
pub type ChainId = u32;
/// Identifies a native contract on a chain.
pub type ContractId = u32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_length_check() {
        let h = Hash32([7u8; 32]);
        assert_eq!(Hash32::from_hex(&h.to_string()).unwrap(), h);
        assert_eq!(Address::from_hex("0x0102"), Err(ParseError::Length { expected: 20, got: 2 }));
        assert_eq!(Address::from_hex("zz"), Err(ParseError::Hex));
    }

    #[test]
    fn amount_json_is_a_string_and_accepts_small_numbers() {
        let a = Amount(340282366920938463463374607431768211455);
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(j, "\"340282366920938463463374607431768211455\"");
        assert_eq!(serde_json::from_str::<Amount>(&j).unwrap(), a);
        assert_eq!(serde_json::from_str::<Amount>("17").unwrap(), Amount(17));
        assert!(serde_json::from_str::<Amount>("\"-1\"").is_err());
    }

    #[test]
    fn checked_arithmetic_refuses_overflow() {
        assert_eq!(Amount::MAX.checked_add(Amount(1)), None);
        assert_eq!(Energy(1).checked_sub(Energy(2)), None);
        assert_eq!(Energy(5).saturating_sub(Energy(7)), Energy::ZERO);
    }
}
