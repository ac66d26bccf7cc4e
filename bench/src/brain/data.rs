//! The benchmark's memories and queries, generated from a seed so that every run (and
//! both engines) see the same data.
//!
//! Texts are 8–20 words drawn Zipf-like (weight `1 / rank`) from a vocabulary of
//! pseudo-words, so a common word occurs in most memories and a rare one in a handful,
//! as in real notes. Vectors are clustered, as embeddings of related texts are: each
//! memory is one of a few hundred random centroids plus noise, L2-normalised, so its
//! nearest neighbours are its cluster mates and recall is a real test of an index. A
//! query is built from a stored memory: two of its words, and its vector plus a little
//! noise.

use std::collections::HashSet;

/// SplitMix64: tiny, fast and good enough for test data (not for anything secret).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// Standard normal, by Box–Muller.
    pub fn gaussian(&mut self) -> f32 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// Words of the vocabulary.
const VOCABULARY: usize = 5_000;
/// Vector clusters (the "topics" of the memories).
const CENTROIDS: usize = 500;
/// Per-dimension noise of a memory around its centroid: with 384 dimensions the noise
/// is about as long as the centroid, so cluster mates have a cosine near 0.4.
const ITEM_NOISE: f32 = 0.06;
/// Per-dimension noise of a query around its memory (cosine to it about 0.93).
const QUERY_NOISE: f32 = 0.02;
const MIN_WORDS: usize = 8;
const MAX_WORDS: usize = 20;

/// Pseudo-words from consonant–vowel syllables: `kamo`, `tirevu`, … Only letters, so
/// both engines' tokenisers see each as one word.
fn vocabulary(rng: &mut Rng) -> Vec<String> {
    const CONSONANTS: &[u8] = b"bdfghklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    let mut seen = HashSet::new();
    let mut words = Vec::with_capacity(VOCABULARY);
    while words.len() < VOCABULARY {
        let syllables = 2 + rng.below(3);
        let mut w = String::with_capacity(syllables * 2);
        for _ in 0..syllables {
            w.push(char::from(CONSONANTS[rng.below(CONSONANTS.len())]));
            w.push(char::from(VOWELS[rng.below(VOWELS.len())]));
        }
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    words
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// A unit vector near `around`, `noise` per dimension away.
fn near(rng: &mut Rng, around: &[f32], noise: f32) -> Vec<f32> {
    let mut v: Vec<f32> = around.iter().map(|x| x + noise * rng.gaussian()).collect();
    normalise(&mut v);
    v
}

/// One search: two words of a stored memory and a vector near its own.
pub struct Query {
    /// The memory it was made from (an index into [`Corpus::texts`]).
    pub source: usize,
    pub text: String,
    pub vector: Vec<f32>,
}

/// Every memory's text and vector, by index: the first `main` belong to the measured
/// user, the rest to the other one.
pub struct Corpus {
    pub dims: usize,
    pub main: usize,
    pub texts: Vec<String>,
    /// Flat, `dims` values per memory, each unit length.
    pub vectors: Vec<f32>,
}

impl Corpus {
    pub fn generate(seed: u64, main: usize, other: usize, dims: usize) -> Corpus {
        let mut rng = Rng::new(seed);
        let words = vocabulary(&mut rng);
        // Cumulative Zipf weights (1 / rank) for sampling by binary search.
        let mut cumulative = Vec::with_capacity(words.len());
        let mut total = 0.0;
        for rank in 1..=words.len() {
            total += 1.0 / rank as f64;
            cumulative.push(total);
        }
        let word = |rng: &mut Rng| {
            let x = rng.unit() * total;
            let at = cumulative.partition_point(|&c| c <= x);
            words[at.min(words.len() - 1)].as_str()
        };
        let centroids: Vec<Vec<f32>> = (0..CENTROIDS)
            .map(|_| {
                let mut c: Vec<f32> = (0..dims).map(|_| rng.gaussian()).collect();
                normalise(&mut c);
                c
            })
            .collect();
        let n = main + other;
        let mut texts = Vec::with_capacity(n);
        let mut vectors = Vec::with_capacity(n * dims);
        for _ in 0..n {
            let len = MIN_WORDS + rng.below(MAX_WORDS - MIN_WORDS + 1);
            let text: Vec<&str> = (0..len).map(|_| word(&mut rng)).collect();
            texts.push(text.join(" "));
            let centroid = &centroids[rng.below(CENTROIDS)];
            vectors.extend(near(&mut rng, centroid, ITEM_NOISE));
        }
        Corpus {
            dims,
            main,
            texts,
            vectors,
        }
    }

    pub fn vector(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dims..(i + 1) * self.dims]
    }

    /// `count` queries over the measured user's memories.
    pub fn queries(&self, seed: u64, count: usize) -> Vec<Query> {
        let mut rng = Rng::new(seed);
        (0..count)
            .map(|_| {
                let source = rng.below(self.main);
                let words: Vec<&str> = self.texts[source].split(' ').collect();
                let first = rng.below(words.len());
                let mut second = rng.below(words.len() - 1);
                if second >= first {
                    second += 1;
                }
                Query {
                    source,
                    text: format!("{} {}", words[first], words[second]),
                    vector: near(&mut rng, self.vector(source), QUERY_NOISE),
                }
            })
            .collect()
    }

    /// The exact `k` nearest of the measured user's memories to each query (cosine,
    /// in `f32`; the vectors are unit length, so a dot product), on all cores.
    pub fn exact_nearest(&self, queries: &[Query], k: usize) -> Vec<Vec<usize>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = queries.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let parts: Vec<_> = queries
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|q| self.top_k(&q.vector, k))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }

    fn top_k(&self, q: &[f32], k: usize) -> Vec<usize> {
        let mut scored: Vec<(f32, usize)> = (0..self.main)
            .map(|i| {
                let dot: f32 = self.vector(i).iter().zip(q).map(|(a, b)| a * b).sum();
                (dot, i)
            })
            .collect();
        if scored.len() > k {
            scored.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(k);
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().map(|(_, i)| i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_corpus_and_queries() {
        let a = Corpus::generate(7, 50, 5, 16);
        let b = Corpus::generate(7, 50, 5, 16);
        assert_eq!(a.texts, b.texts);
        assert_eq!(a.vectors, b.vectors);
        let (qa, qb) = (a.queries(9, 10), b.queries(9, 10));
        assert!(qa
            .iter()
            .zip(&qb)
            .all(|(x, y)| x.text == y.text && x.vector == y.vector));
    }

    #[test]
    fn texts_vectors_and_queries_have_the_promised_shape() {
        let c = Corpus::generate(1, 200, 10, 32);
        assert_eq!(c.texts.len(), 210);
        assert!(c.texts.iter().all(|t| {
            let n = t.split(' ').count();
            (MIN_WORDS..=MAX_WORDS).contains(&n)
        }));
        for i in 0..210 {
            let n: f32 = c.vector(i).iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-4);
        }
        for q in c.queries(2, 20) {
            assert!(q.source < 200);
            assert!(q
                .text
                .split(' ')
                .all(|w| c.texts[q.source].split(' ').any(|x| x == w)));
        }
    }

    #[test]
    fn a_query_finds_its_own_memory_first() {
        let c = Corpus::generate(3, 300, 0, 384);
        let queries = c.queries(4, 20);
        let exact = c.exact_nearest(&queries, 10);
        assert_eq!(exact.len(), 20);
        for (q, top) in queries.iter().zip(&exact) {
            assert_eq!(top.len(), 10);
            assert_eq!(top[0], q.source);
        }
    }
}
