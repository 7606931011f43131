//! The chooser driven by scripted events on a made-up clock: each test feeds what peers,
//! the disk thread and the clock would, and checks the commands the chooser gives. No
//! sockets, no threads, no sleeping.

use super::*;
use crate::choke::Slots;
use crate::metainfo::tests::TempDir;
use crate::metainfo::{FileEntry, Metainfo};
use crate::pieces::hash_and_write;
use crate::sha1::sha1;
use crate::storage::Storage;
use crate::strategy::{ChokerFlag, Flags};
use std::path::PathBuf;

/// A chooser over a small torrent, the disk thread's stand-in (a real `Storage` in a temp
/// dir) and a clock that only moves when a test says so.
struct Rig {
    c: Chooser,
    t0: Instant,
    now: Instant,
    data: Vec<u8>,
    storage: Storage,
    _dir: TempDir,
    outs: Vec<Out>,
}

const PIECE: u32 = 2 * BLOCK;

fn meta(pieces: u32) -> (Metainfo, Vec<u8>) {
    let data: Vec<u8> = (0..pieces * PIECE).map(|i| (i * 31 + i / 7) as u8).collect();
    let m = Metainfo {
        info_hash: [1; 20],
        name: "rig.bin".into(),
        piece_length: u64::from(PIECE),
        pieces: data.chunks(PIECE as usize).map(sha1).collect(),
        files: vec![FileEntry {
            path: PathBuf::from("rig.bin"),
            length: data.len() as u64,
            offset: 0,
        }],
        total_length: data.len() as u64,
        multi_file: false,
        announce: None,
        announce_list: Vec::new(),
        private: false,
    };
    (m, data)
}

fn flags() -> Flags {
    Flags {
        choker: ChokerFlag::Vanilla,
        rebel: 0,
        thief: false,
        reveal: None,
        sybil: 1,
        min_peers: 20,
        memory: None,
    }
}

fn addr(i: u64) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 2], 7000 + i as u16))
}

fn pid(i: u64) -> [u8; 20] {
    let mut id = [b'p'; 20];
    id[19] = i as u8;
    id
}

impl Rig {
    /// `pieces` pieces of two blocks; `have` of them verified already; `slots` upload
    /// slots (the optimistic one included).
    fn new(pieces: u32, have: &[u32], slots: usize, f: Flags) -> Rig {
        let (m, data) = meta(pieces);
        let dir = TempDir::new("chooser");
        let storage = Storage::open(&m, &dir.0, false).unwrap();
        let geo = m.geometry();
        let strategy = f.build(&Slots::Fixed(slots), 100.0, 1.0, None);
        let mut picker = Picker::new(geo, strategy.order());
        for &i in have {
            picker.set_have(i);
        }
        let set = Settings {
            peer_id: [b'u'; 20],
            listen: SocketAddr::from(([127, 0, 0, 1], 6881)),
            max_peers: 60,
            stop_after_download: false,
            timing: Timing::scaled(1.0),
            rng_seed: 3,
            trace: true,
        };
        let t0 = Instant::now();
        let mut c = Chooser::new(m.pieces.clone(), picker, strategy, set, geo, t0);
        c.start(t0, &[]);
        let mut r = Rig { c, t0, now: t0, data, storage, _dir: dir, outs: Vec::new() };
        r.take();
        r
    }

    fn at(&mut self, secs: f64) -> Instant {
        self.now = self.t0 + Duration::from_secs_f64(secs);
        self.now
    }

    /// Every command given since the last call.
    fn take(&mut self) -> Vec<Out> {
        let mut new = Vec::new();
        self.c.take_out(&mut new);
        self.outs.extend(new);
        std::mem::take(&mut self.outs)
    }

    /// An incoming peer that completes its handshake; returns its id.
    fn join(&mut self, i: u64) -> u64 {
        let now = self.now;
        let id = self.c.accept(now, addr(i)).expect("room for the peer");
        self.c.on_handshake(now, id, pid(i));
        id
    }

    fn msg(&mut self, id: u64, m: Message) {
        let now = self.now;
        self.c.on_messages(now, id, std::iter::once(m));
    }

    fn block(&mut self, id: u64, index: u32, begin: u32) {
        let at = (index * PIECE + begin) as usize;
        let data = self.data[at..at + BLOCK as usize].to_vec();
        self.msg(id, Message::Piece { index, begin, data });
    }

    /// Play the disk thread for every piece the chooser asked to verify.
    fn disk(&mut self) {
        let outs = self.take();
        for o in outs {
            match o {
                Out::Verify(job) => {
                    let done = hash_and_write(&self.storage, job);
                    let now = self.now;
                    self.c.on_verdict(now, done);
                }
                other => self.outs.push(other),
            }
        }
    }

    fn tick(&mut self, secs: f64) {
        let now = self.at(secs);
        self.c.tick(now);
    }
}

/// The wire messages sent to peer `id`, in order.
fn sent(outs: &[Out], id: u64) -> Vec<Message> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Send(i, Cmd::Send(m)) if *i == id => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn requests(outs: &[Out], id: u64) -> Vec<(u32, u32)> {
    sent(outs, id)
        .into_iter()
        .filter_map(|m| match m {
            Message::Request(Block { index, begin, .. }) => Some((index, begin)),
            _ => None,
        })
        .collect()
}

fn cancels(outs: &[Out], id: u64) -> Vec<(u32, u32)> {
    sent(outs, id)
        .into_iter()
        .filter_map(|m| match m {
            Message::Cancel(Block { index, begin, .. }) => Some((index, begin)),
            _ => None,
        })
        .collect()
}

fn closed(outs: &[Out]) -> Vec<u64> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Close(i) => Some(*i),
            _ => None,
        })
        .collect()
}

/// Is peer `id` unchoked after these commands (the last choke or unchoke wins)?
fn unchoked(outs: &[Out], id: u64) -> Option<bool> {
    outs.iter().rev().find_map(|o| match o {
        Out::Send(i, Cmd::Send(Message::Unchoke)) if *i == id => Some(true),
        Out::Send(i, Cmd::Choke) if *i == id => Some(false),
        _ => None,
    })
}

/// A peer holding the pieces `bits` says it has.
fn holder(r: &mut Rig, i: u64, bits: &[bool]) -> u64 {
    let id = r.join(i);
    r.msg(id, Message::Bitfield(crate::peer::bits_to_bytes(bits)));
    id
}

/// A seed with every piece.
fn seed(r: &mut Rig, i: u64) -> u64 {
    let bits = vec![true; r.c.geo.num_pieces as usize];
    holder(r, i, &bits)
}

#[test]
fn a_seed_gets_interest_requests_and_the_piece_goes_to_be_hashed() {
    let mut r = Rig::new(1, &[], 4, flags());
    let s = seed(&mut r, 1);
    assert_eq!(sent(&r.take(), s), vec![Message::Interested]);
    r.msg(s, Message::Unchoke);
    let o = r.take();
    assert_eq!(requests(&o, s), vec![(0, 0), (0, BLOCK)]);
    r.block(s, 0, 0);
    assert!(!r.take().iter().any(|o| matches!(o, Out::Verify(_))));
    r.block(s, 0, BLOCK);
    r.disk();
    let o = r.take();
    let at = |f: &dyn Fn(&Out) -> bool| o.iter().position(f);
    let done = at(&|o| matches!(o, Out::Complete)).expect("complete");
    let told = at(&|o| matches!(o, Out::Tracker(TrackerCtl::Completed))).expect("tracker told");
    assert!(done < told);
    assert_eq!(closed(&o), vec![s], "two seeds have nothing to trade");
    assert!(r.c.picker.is_complete());
    assert_eq!(r.c.download_secs(), Some(0.0));
}

/// aria2 sends a bitfield instead of HAVEs whenever it is the shorter message: a later
/// bitfield adds pieces, counted as HAVEs, and never takes one away.
#[test]
fn a_later_bitfield_adds_pieces_as_haves() {
    let mut r = Rig::new(4, &[], 4, flags());
    let id = holder(&mut r, 1, &[true, false, false, false]);
    let have_rate = |r: &Rig| r.c.views(r.now).iter().find(|v| v.id == id).map(|v| v.have_rate);
    assert_eq!(have_rate(&r), Some(0.0), "the first bitfield is not news");
    r.msg(id, Message::Bitfield(crate::peer::bits_to_bytes(&[false, true, true, false])));
    assert_eq!(r.c.peers[&id].has, vec![true, true, true, false]);
    assert_eq!(r.c.peers[&id].has.iter().filter(|&&h| h).count(), 3);
    assert_eq!((0..4).map(|i| r.c.picker.availability(i)).collect::<Vec<_>>(), vec![1, 1, 1, 0]);
    assert!(have_rate(&r) > Some(0.0));
}

/// Only requested blocks earn credit (mainline's `got_piece` drops the others before it
/// measures): a peer spraying blocks we never asked for gains no rate and stays snubbed.
#[test]
fn unrequested_blocks_earn_no_credit() {
    let mut r = Rig::new(2, &[], 4, flags());
    let s = seed(&mut r, 1);
    r.at(61.0);
    r.block(s, 0, 0);
    r.block(s, 1, BLOCK);
    let v = r.c.views(r.now).into_iter().find(|v| v.id == s).expect("peer");
    assert_eq!((v.down_rate, v.snubbed), (0.0, true));
    assert_eq!(r.c.peers[&s].down_round, 0);
    assert_eq!(r.c.wasted, 2 * u64::from(BLOCK));
}

/// Endgame: once every block is requested, a second peer gets duplicates; the first copy
/// to arrive wins and every other asker is cancelled.
#[test]
fn endgame_duplicates_the_last_blocks_and_cancels_the_losers() {
    let mut r = Rig::new(1, &[], 4, flags());
    let a = seed(&mut r, 1);
    let b = seed(&mut r, 2);
    r.msg(a, Message::Unchoke);
    let o = r.take();
    assert_eq!(requests(&o, a), vec![(0, 0), (0, BLOCK)]);
    r.msg(b, Message::Unchoke);
    let o = r.take();
    assert_eq!(requests(&o, b), vec![(0, 0), (0, BLOCK)], "endgame duplicates");
    r.block(b, 0, BLOCK);
    let o = r.take();
    assert_eq!(cancels(&o, a), vec![(0, BLOCK)]);
    assert!(cancels(&o, b).is_empty());
    r.block(a, 0, 0);
    let o = r.take();
    assert_eq!(cancels(&o, b), vec![(0, 0)]);
    assert!(o.iter().any(|o| matches!(o, Out::Verify(j) if j.index == 0)));
    // The loser's late copy is waste, not a second store.
    r.block(a, 0, BLOCK);
    assert_eq!(r.c.wasted, u64::from(BLOCK));
}

/// Smart ban: a piece built from an honest peer's block and a liar's fails, and nobody is
/// struck. It is fetched again from one peer only; once it verifies, the block that
/// differed names the liar.
#[test]
fn smart_ban_strikes_only_the_sender_of_the_bad_block() {
    // two pieces, both peers hold only piece 0: nobody completes, nobody leaves
    let mut r = Rig::new(2, &[], 4, flags());
    let honest = holder(&mut r, 1, &[true, false]);
    let liar = holder(&mut r, 2, &[true, false]);
    r.msg(honest, Message::Unchoke);
    assert_eq!(requests(&r.take(), honest), vec![(0, 0), (0, BLOCK)]);
    r.block(honest, 0, 0);
    // honest chokes us halfway: the second block goes to the liar, which lies
    r.msg(honest, Message::Choke);
    r.msg(liar, Message::Unchoke);
    assert_eq!(requests(&r.take(), liar), vec![(0, BLOCK)]);
    let junk = vec![0xEE; BLOCK as usize];
    r.msg(liar, Message::Piece { index: 0, begin: BLOCK, data: junk });
    r.msg(liar, Message::Choke);
    r.msg(honest, Message::Unchoke);
    r.disk();
    assert_eq!(r.c.hash_fails, 1);
    assert_eq!((r.c.peers[&honest].strikes, r.c.peers[&liar].strikes), (0, 0));
    // fetched again, all of it from the one peer that asks first
    let o = r.take();
    assert_eq!(requests(&o, honest), vec![(0, 0), (0, BLOCK)]);
    r.msg(liar, Message::Unchoke);
    assert!(requests(&r.take(), liar).is_empty(), "a suspect piece has one fetcher");
    r.block(honest, 0, 0);
    r.block(honest, 0, BLOCK);
    r.disk();
    assert!(r.c.picker.have(0));
    assert_eq!((r.c.peers[&honest].strikes, r.c.peers[&liar].strikes), (0, 1));
}

/// After a failure with several senders the piece goes to one peer at a time: when that
/// peer stops halfway (it chokes us), the piece starts over, all of it, for the next one,
/// so no two peers' blocks are ever mixed again.
#[test]
fn a_piece_that_failed_with_several_senders_comes_from_one_peer() {
    let mut r = Rig::new(2, &[], 4, flags());
    let a = holder(&mut r, 1, &[true, false]);
    let b = holder(&mut r, 2, &[true, false]);
    r.msg(a, Message::Unchoke);
    r.block(a, 0, 0);
    r.msg(a, Message::Choke);
    r.msg(b, Message::Unchoke);
    let junk = vec![0xEE; BLOCK as usize];
    let m = Message::Piece { index: 0, begin: BLOCK, data: junk };
    r.msg(b, m);
    r.msg(b, Message::Choke);
    r.disk();
    assert_eq!(r.c.hash_fails, 1);
    r.take();
    r.msg(a, Message::Unchoke);
    assert_eq!(requests(&r.take(), a), vec![(0, 0), (0, BLOCK)]);
    r.block(a, 0, 0);
    r.msg(a, Message::Choke);
    r.msg(b, Message::Unchoke);
    assert_eq!(
        requests(&r.take(), b),
        vec![(0, 0), (0, BLOCK)],
        "the whole piece again, not only the missing block"
    );
}

/// A peer that alone sent a piece that fails gets a strike each time; the third closes it
/// and bans its peer id, so it cannot come back.
#[test]
fn three_bad_pieces_ban_the_sender() {
    let mut r = Rig::new(1, &[], 4, flags());
    let liar = seed(&mut r, 2);
    r.msg(liar, Message::Unchoke);
    for strike in 1..=3 {
        let o = r.take();
        assert_eq!(requests(&o, liar), vec![(0, 0), (0, BLOCK)], "attempt {}", strike);
        for begin in [0, BLOCK] {
            let data = vec![strike as u8; BLOCK as usize];
            r.msg(liar, Message::Piece { index: 0, begin, data });
        }
        r.disk();
        assert_eq!(r.c.hash_fails, strike);
        if strike < 3 {
            assert_eq!(r.c.peers[&liar].strikes, strike);
        }
    }
    let o = r.take();
    assert_eq!(closed(&o), vec![liar], "the third strike closes it");
    assert!(!r.c.picker.have(0));
    let again = r.c.accept(r.now, addr(9)).unwrap();
    r.c.on_handshake(r.now, again, pid(2));
    assert_eq!(closed(&r.take()), vec![again], "banned by peer id");
}

/// Requests a peer leaves unanswered for the request timeout (60 s) are cancelled and go
/// back to the pool for other peers; a block arriving meanwhile resets that clock.
#[test]
fn stalled_requests_are_cancelled_and_go_to_another_peer() {
    // two pieces, only piece 0 on offer: no endgame to hide a lost block
    let mut r = Rig::new(2, &[], 4, flags());
    let slow = holder(&mut r, 1, &[true, false]);
    let other = r.join(2);
    r.msg(other, Message::Unchoke);
    r.msg(slow, Message::Unchoke);
    assert_eq!(requests(&r.take(), slow), vec![(0, 0), (0, BLOCK)]);
    r.at(50.0);
    r.block(slow, 0, 0);
    r.tick(61.0);
    assert!(cancels(&r.take(), slow).is_empty(), "a block at 50 s resets the clock");
    r.tick(100.0);
    // another peer gets piece 0 meanwhile; the missing block is still slow's
    r.msg(other, Message::Have(0));
    let o = r.take();
    assert_eq!(sent(&o, other), vec![Message::Interested]);
    r.tick(109.0);
    assert!(cancels(&r.take(), slow).is_empty());
    r.tick(111.0);
    let o = r.take();
    assert_eq!(cancels(&o, slow), vec![(0, BLOCK)]);
    assert_eq!(requests(&o, other), vec![(0, BLOCK)], "the other peer gets it first");
    assert!(requests(&o, slow).is_empty());
}

/// The action the last round's trace gives each peer.
fn actions(outs: &[Out]) -> BTreeMap<u64, String> {
    let mut m = BTreeMap::new();
    for o in outs {
        if let Out::Trace(line) = o {
            let word = |k: &str| {
                line.split(' ').find_map(|w| w.strip_prefix(k)).unwrap_or_default().to_string()
            };
            m.insert(word("peer=").parse().unwrap(), word("action="));
        }
    }
    m
}

/// Anti-snubbing (Cohen §3.4): a peer that has sent us nothing for 60 s gets no regular
/// slot, only perhaps the optimistic one, even when every rate is zero.
#[test]
fn snubbing_peers_get_no_regular_slot() {
    for seed in 0..8 {
        // one regular slot + one optimistic; we hold piece 0 and they want it
        let mut r = Rig::new(2, &[0], 2, flags());
        r.c.rng = Rng::new(seed);
        let old: Vec<u64> = (1..=4).map(|i| r.join(i)).collect();
        for &id in &old {
            r.msg(id, Message::Interested);
        }
        r.at(65.0);
        let new = r.join(5);
        r.msg(new, Message::Interested);
        r.take();
        r.tick(70.0);
        let a = actions(&r.take());
        assert_eq!(a[&new], "unchoke", "seed {}: {:?}", seed, a);
        assert!(old.iter().all(|id| a[id] != "unchoke"), "seed {}: {:?}", seed, a);
        assert_eq!(a.values().filter(|x| *x == "optimistic").count(), 1);
    }
}
/// rain's FastUnchoke: a newly interested peer is unchoked at once while a regular slot
/// is free, and waits for the round when none is.
#[test]
fn a_newly_interested_peer_takes_a_free_slot_at_once() {
    // three slots: two regular + one optimistic (the first round gave the optimistic
    // slot to nobody: there was nobody)
    let mut r = Rig::new(1, &[0], 3, flags());
    let ids: Vec<u64> = (1..=3).map(|i| r.join(i)).collect();
    r.take();
    r.msg(ids[0], Message::Interested);
    assert_eq!(unchoked(&r.take(), ids[0]), Some(true));
    r.msg(ids[1], Message::Interested);
    assert_eq!(unchoked(&r.take(), ids[1]), Some(true));
    r.msg(ids[2], Message::Interested);
    assert_eq!(unchoked(&r.take(), ids[2]), None, "no free regular slot");
    // uninterested peers are never fast-unchoked
    let lazy = r.join(4);
    r.msg(lazy, Message::NotInterested);
    assert_eq!(unchoked(&r.take(), lazy), None);
}

/// Seed mode: every piece verified, peers ranked by how fast we upload to them.
#[test]
fn a_seed_unchokes_the_peers_it_uploads_to_fastest() {
    for seed in 0..8 {
        let mut r = Rig::new(1, &[0], 3, flags());
        r.c.rng = Rng::new(seed);
        let ids: Vec<u64> = (1..=5).map(|i| r.join(i)).collect();
        for &id in &ids {
            r.msg(id, Message::Interested);
        }
        // in the last 20 s we uploaded most to the last two
        r.at(5.0);
        for (k, &id) in ids.iter().enumerate() {
            let now = r.now;
            for _ in 0..=k {
                r.c.on_sent(now, id, r.c.geo.block(0, 0));
            }
        }
        r.take();
        r.tick(10.0);
        let a = actions(&r.take());
        let regular: Vec<u64> = ids.iter().copied().filter(|id| a[id] == "unchoke").collect();
        assert_eq!(regular, vec![ids[3], ids[4]], "seed {}: {:?}", seed, a);
        assert_eq!(a.values().filter(|x| *x == "optimistic").count(), 1);
    }
}

/// Protocol deadlines: no handshake within 20 s (+10 s to connect when we dialled) and
/// 180 s of silence close the connection; any message resets the silence clock.
#[test]
fn deadlines_close_silent_connections() {
    let mut r = Rig::new(1, &[0], 4, flags());
    let mute = r.c.accept(r.now, addr(1)).unwrap();
    let talker = r.join(2);
    r.msg(talker, Message::Interested);
    r.tick(19.0);
    assert!(closed(&r.take()).is_empty());
    r.tick(21.0);
    assert_eq!(closed(&r.take()), vec![mute]);
    r.at(170.0);
    r.msg(talker, Message::Request(Block { index: 0, begin: 0, length: BLOCK }));
    r.msg(talker, Message::KeepAlive);
    r.tick(300.0);
    assert!(closed(&r.take()).is_empty(), "a keep-alive resets the idle clock");
    r.tick(351.0);
    assert_eq!(closed(&r.take()), vec![talker]);
}

/// Keep-alives alone keep no slot: after the idle time a peer we unchoked that asks for
/// nothing goes, and so does one with nothing to trade either way; a choked peer waiting for
/// its turn stays.
#[test]
fn keepalives_alone_keep_no_slot() {
    let mut r = Rig::new(1, &[0], 2, flags());
    let ids: Vec<u64> = (1..=3).map(|i| r.join(i)).collect();
    for &id in &ids {
        r.msg(id, Message::Interested);
    }
    let idle = r.join(4);
    assert_eq!(unchoked(&r.take(), ids[0]), Some(true), "the free regular slot");
    r.at(100.0);
    for id in [ids[0], ids[1], ids[2], idle] {
        r.msg(id, Message::KeepAlive);
    }
    r.tick(179.0);
    assert!(closed(&r.take()).is_empty());
    r.tick(181.0);
    assert_eq!(closed(&r.take()), vec![ids[0], idle]);
}

/// At --max-peers a newcomer's handshake takes the place of the least useful peer: first
/// one sitting on an upload slot asking for nothing (its slot kept for the newcomer), then
/// the oldest that has traded nothing and has nothing we want; with neither, the newcomer
/// is refused at once.
#[test]
fn a_full_table_makes_room_for_a_newcomer() {
    let mut r = Rig::new(2, &[0], 2, flags());
    r.c.set.max_peers = 4;
    let a = r.join(1);
    r.msg(a, Message::Interested);
    let x = holder(&mut r, 7, &[false, true]);
    r.msg(x, Message::Interested);
    let b = holder(&mut r, 2, &[false, true]);
    let c = r.join(3);
    assert_eq!((unchoked(&r.take(), a), r.c.peers[&x].am_choking), (Some(true), true));
    r.at(15.0);
    let d = r.join(4);
    assert_eq!(closed(&r.take()), vec![a], "a sat on its slot for a round");
    r.msg(d, Message::Interested);
    assert_eq!(unchoked(&r.take(), d), Some(true), "a's slot went to the newcomer");
    r.at(29.0);
    r.msg(d, Message::Request(Block { index: 0, begin: 0, length: BLOCK }));
    r.msg(d, Message::Bitfield(crate::peer::bits_to_bytes(&[false, true])));
    r.at(30.0);
    let e = r.join(5);
    assert_eq!(closed(&r.take()), vec![c], "c traded nothing and has nothing we want");
    assert_eq!(r.c.accept(r.now, addr(6)), None, "x, b and d are of use, e is new: refused");
    assert!([x, b, d, e].iter().all(|id| r.c.peers.contains_key(id)));
}

/// Incoming connections without a handshake are bounded by count, not age: at 16, or at
/// --max-peers, the oldest goes however young, so churn at any rate leaves room for a
/// handshake.
#[test]
fn half_open_churn_leaves_room_for_handshakes() {
    let mut r = Rig::new(1, &[0], 4, flags());
    let first: Vec<u64> = (0..16).map(|i| r.c.accept(r.now, addr(i)).unwrap()).collect();
    assert!(closed(&r.take()).is_empty());
    let honest = r.c.accept(r.now, addr(99)).unwrap();
    assert_eq!(closed(&r.take()), vec![first[0]], "16 at most");
    r.c.on_handshake(r.now, honest, pid(99));
    assert!(r.c.peers[&honest].active && closed(&r.take()).is_empty());
    r.c.set.max_peers = r.c.peers.len();
    assert!(r.c.accept(r.now, addr(100)).is_some());
    assert_eq!(closed(&r.take()), vec![first[1]], "at --max-peers");
}

/// A request for a piece we do not have closes the peer; one while choked is ignored; one
/// while unchoked is queued once, and a cancel removes it.
#[test]
fn requests_are_served_only_when_unchoked_and_for_pieces_we_have() {
    let mut r = Rig::new(2, &[0], 4, flags());
    let p = r.join(1);
    let req = |index| Message::Request(Block { index, begin: 0, length: BLOCK });
    r.msg(p, req(0));
    let serve = |o: &[Out]| {
        o.iter().filter(|o| matches!(o, Out::Send(_, Cmd::Serve(Block { .. })))).count()
    };
    assert_eq!(serve(&r.take()), 0, "choked: ignored");
    r.msg(p, Message::Interested);
    r.take();
    r.msg(p, req(0));
    r.msg(p, req(0));
    assert_eq!(serve(&r.take()), 1, "queued once");
    r.msg(p, Message::Cancel(Block { index: 0, begin: 0, length: BLOCK }));
    let o = r.take();
    assert!(o.iter().any(|o| matches!(o, Out::Send(_, Cmd::Cancel(Block { index: 0, .. })))));
    r.msg(p, req(1));
    assert_eq!(closed(&r.take()), vec![p]);
}

/// Two connections to one peer id: the one opened by the greater peer id survives, as
/// libtorrent decides too, so both ends keep the same connection.
#[test]
fn duplicate_connections_keep_the_one_the_greater_id_opened() {
    let mut r = Rig::new(2, &[0], 4, flags());
    r.c.on_peers(r.now, vec![addr(1)]);
    let dialled = r
        .take()
        .iter()
        .find_map(|o| match o {
            Out::Dial(id, _) => Some(*id),
            _ => None,
        })
        .expect("dials the new address");
    let incoming = r.c.accept(r.now, addr(50)).unwrap();
    // their id "ppp..." < ours "uuu...": keep the connection we opened
    r.c.on_handshake(r.now, dialled, pid(1));
    r.c.on_handshake(r.now, incoming, pid(1));
    assert_eq!(closed(&r.take()), vec![incoming]);
    // ourselves, dialled: closed and never dialled again
    r.c.on_peers(r.now, vec![addr(2)]);
    let me = r
        .take()
        .iter()
        .find_map(|o| match o {
            Out::Dial(id, _) => Some(*id),
            _ => None,
        })
        .unwrap();
    r.c.on_handshake(r.now, me, [b'u'; 20]);
    assert_eq!(closed(&r.take()), vec![me]);
    assert!(r.c.addrs[&addr(2)].banned);
}

/// The greater-id rule only with clients that apply it too (libtorrent and those built on it,
/// tyrant): there the greater id's connection survives even if it came second. aria2 and
/// transmission keep the connection they had first, so with them the first survives.
#[test]
fn duplicate_connections_follow_the_other_clients_rule() {
    for (theirs, first_survives) in [
        (*b"-LT2010-zzzzzzzzzzzz", false),
        (*b"-TY0100-zzzzzzzzzzzz", false),
        (*b"A2-1-36-0-zzzzzzzzzz", true),
    ] {
        let mut r = Rig::new(2, &[0], 4, flags());
        r.c.on_peers(r.now, vec![addr(1)]);
        let dialled = r.take().iter().find_map(|o| match o {
            Out::Dial(id, _) => Some(*id),
            _ => None,
        });
        let dialled = dialled.expect("dials the new address");
        let incoming = r.c.accept(r.now, addr(50)).unwrap();
        // ours is "uuu...", greater than all three: the connection we dialled is the one the
        // greater-id rule keeps, and it completes its handshake second
        r.c.on_handshake(r.now, incoming, theirs);
        r.c.on_handshake(r.now, dialled, theirs);
        let lost = if first_survives { dialled } else { incoming };
        assert_eq!(closed(&r.take()), vec![lost], "{}", String::from_utf8_lossy(&theirs));
    }
}

/// mainline rechokes at once when an unchoked, interested peer leaves or loses interest:
/// its slot goes to a waiting peer without waiting for the next round.
#[test]
fn a_freed_slot_is_given_away_at_once() {
    for (leave, seed) in [(true, 1), (false, 2)] {
        let mut r = Rig::new(1, &[0], 2, flags()); // one regular + one optimistic
        r.c.rng = Rng::new(seed);
        let ids: Vec<u64> = (1..=4).map(|i| r.join(i)).collect();
        for &id in &ids {
            r.msg(id, Message::Interested);
        }
        r.tick(10.0);
        r.take();
        let on: Vec<u64> = ids.iter().copied().filter(|id| !r.c.peers[id].am_choking).collect();
        assert_eq!(on.len(), 2);
        r.at(11.0);
        if leave {
            let now = r.now;
            r.c.on_closed(now, on[0], "gone");
        } else {
            r.msg(on[0], Message::NotInterested);
        }
        let o = r.take();
        let newly: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| !on.contains(id) && unchoked(&o, *id) == Some(true))
            .collect();
        assert_eq!(newly.len(), 1, "leave={}: {:?}", leave, o);
    }
}

/// A seed dials the addresses the tracker gives it, so leechers that never dial (such as
/// transmission with peers on 127.x) are served; an address that turned out to be another
/// seed is not dialled again.
#[test]
fn a_seed_dials_leechers_but_not_other_seeds() {
    let mut r = Rig::new(1, &[0], 4, flags());
    r.c.on_peers(r.now, vec![addr(1), addr(2)]);
    let dials: Vec<(u64, SocketAddr)> = r
        .take()
        .iter()
        .filter_map(|o| match o {
            Out::Dial(id, a) => Some((*id, *a)),
            _ => None,
        })
        .collect();
    assert_eq!(dials.len(), 2, "a seed dials too");
    let (other_seed, _) = *dials.iter().find(|(_, a)| *a == addr(2)).unwrap();
    r.c.on_handshake(r.now, other_seed, pid(2));
    r.msg(other_seed, Message::Bitfield(vec![0x80]));
    assert_eq!(closed(&r.take()), vec![other_seed], "two seeds have nothing to trade");
    r.tick(600.0);
    let redials = r.take().iter().filter(|o| matches!(o, Out::Dial(_, a) if *a == addr(2))).count();
    assert_eq!(redials, 0, "never again, however long we wait");
}

fn dials(outs: &[Out]) -> Vec<(u64, SocketAddr)> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Dial(id, a) => Some((*id, *a)),
            _ => None,
        })
        .collect()
}

fn far(i: u64) -> SocketAddr {
    SocketAddr::from(([127, 0, (i / 250) as u8 + 1, (i % 250) as u8 + 2], 20000))
}

/// The address book forgets: a reply of 10,000 dead addresses does not keep out the
/// seeder named later (it is dialled first, being the freshest), and an address that
/// failed 5 times in a row is dropped.
#[test]
fn the_address_book_makes_room_and_prefers_fresh_addresses() {
    let mut r = Rig::new(2, &[], 4, flags());
    r.c.on_peers(r.now, (0..10_000).map(far).collect());
    let first = dials(&r.take());
    assert_eq!(first.len(), 16, "the half-open limit");
    r.at(1.0);
    r.c.on_peers(r.now, vec![addr(1)]);
    assert!(r.c.addrs.contains_key(&addr(1)) && r.c.addrs.len() == 10_000);
    // The next free half-open slot goes to the freshest address.
    r.c.on_closed(r.now, first[0].0, "connection refused");
    let next = dials(&r.take());
    assert_eq!(next.iter().map(|d| d.1).collect::<Vec<_>>(), vec![addr(1)]);
}

/// An address that failed 5 times in a row (3 s, 30, 60, 120 s apart) is forgotten.
#[test]
fn a_dead_address_is_forgotten() {
    let mut r = Rig::new(2, &[], 4, flags());
    r.c.on_peers(r.now, vec![addr(1)]);
    for t in [0.0, 4.0, 35.0, 96.0, 217.0] {
        r.tick(t);
        let id = dials(&r.take()).first().map(|d| d.0);
        let id = id.unwrap_or_else(|| panic!("not redialled at {} s", t));
        r.c.on_closed(r.now, id, "connection refused");
    }
    assert!(r.c.addrs.is_empty(), "forgotten after 5 failures");
}

/// A peer that refused us once (no handshake) is asked again within seconds; the second
/// refusal costs 30 s.
#[test]
fn a_first_refusal_is_retried_within_seconds() {
    let mut r = Rig::new(2, &[], 4, flags());
    r.c.on_peers(r.now, vec![addr(1)]);
    let (id, _) = dials(&r.take())[0];
    r.c.on_closed(r.now, id, "refused");
    r.tick(2.5);
    assert!(dials(&r.take()).is_empty());
    r.tick(3.5);
    let (id, _) = dials(&r.take())[0];
    r.c.on_closed(r.now, id, "refused");
    r.tick(30.0);
    assert!(dials(&r.take()).is_empty());
    r.tick(34.0);
    assert_eq!(dials(&r.take()).len(), 1);
}

/// The pipeline follows the last seconds' rate: a second after a seed that kept us choked
/// for 10 s unchokes us and answers at 1 MiB/s, about three seconds' worth is in flight. The
/// 20 s meter would still read a tenth of the rate, and a peer that serves in batches
/// (transmission) would stay at that crawl.
#[test]
fn the_pipeline_stops_at_the_peers_reqq() {
    // Blocks arrive at 64 MiB/s, enough for thousands in flight: the cap decides.
    // Below PIPELINE_MIN the peer's word wins (a clamp with min > max would panic), and 0
    // still leaves one request.
    let table = [
        (None, 250),
        (Some(0), 1),
        (Some(2), 2),
        (Some(8), 8),
        (Some(400), 400),
        (Some(100_000), 500),
    ];
    for (reqq, cap) in table {
        let mut r = Rig::new(4000, &[], 4, flags());
        let s = seed(&mut r, 1);
        if let Some(n) = reqq {
            r.msg(s, Message::Reqq(n));
        }
        r.take();
        r.at(10.0);
        r.msg(s, Message::Unchoke);
        let mut queue: std::collections::VecDeque<(u32, u32)> = requests(&r.take(), s).into();
        let mut most = queue.len();
        for k in 0..4000 {
            r.at(10.0 + f64::from(k) / 4096.0);
            let (index, begin) = queue.pop_front().expect("a request in flight");
            r.block(s, index, begin);
            queue.extend(requests(&r.take(), s));
            most = most.max(queue.len());
        }
        assert_eq!(most, cap, "reqq {:?}", reqq);
    }
}

#[test]
fn the_pipeline_grows_within_a_second_of_an_unchoke() {
    let mut r = Rig::new(400, &[], 4, flags());
    let s = seed(&mut r, 1);
    r.take();
    r.at(10.0);
    r.msg(s, Message::Unchoke);
    let mut queue: std::collections::VecDeque<(u32, u32)> = requests(&r.take(), s).into();
    for k in 0..64 {
        r.at(10.0 + f64::from(k) / 64.0);
        let (index, begin) = queue.pop_front().expect("a request in flight");
        r.block(s, index, begin);
        queue.extend(requests(&r.take(), s));
    }
    assert!(queue.len() >= 60, "{} requests in flight after 1 s at 1 MiB/s", queue.len());
}

/// A new connection that answers with a burst (a pacer's grant of several blocks) does not
/// read as several times its rate: five blocks 0.3 s after connecting are 40 KiB/s over the
/// 2 s window, three seconds of which is 7 blocks, not the 50 that the rate over the first
/// 300 ms would ask for, blocks nobody else could then fetch.
#[test]
fn a_young_connections_burst_does_not_inflate_the_pipeline() {
    let mut r = Rig::new(400, &[], 4, flags());
    r.at(0.0);
    let s = seed(&mut r, 1);
    r.take();
    r.at(0.1);
    r.msg(s, Message::Unchoke);
    let mut queue: std::collections::VecDeque<(u32, u32)> = requests(&r.take(), s).into();
    assert_eq!(queue.len(), 5);
    r.at(0.3);
    for _ in 0..5 {
        let (index, begin) = queue.pop_front().expect("a request in flight");
        r.block(s, index, begin);
        queue.extend(requests(&r.take(), s));
    }
    assert!(queue.len() <= 8, "{} requests in flight after a 5-block burst", queue.len());
}
