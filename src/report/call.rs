//! One call's events, sorted into what the page shows: the call events, one [`Stream`] per
//! media direction (SSRC, source, destination) with its per-second intervals and end
//! summary, DTMF digits and media health.

use crate::publish::privacy::Privacy;
use crate::track::event::{
    CallEvent, DtmfEvent, Event, MediaHealth, MediaProblem, RtpInterval, StreamEnd, Ts,
};
use core::net::SocketAddr;

#[derive(Debug, Default, Clone)]
pub struct Stream {
    pub ssrc: u32,
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    pub codec: String,
    pub intervals: Vec<RtpInterval>,
    pub end: Option<StreamEnd>,
}

#[derive(Debug, Default, Clone)]
pub struct CallData {
    pub calls: Vec<CallEvent>,
    pub streams: Vec<Stream>,
    pub dtmf: Vec<DtmfEvent>,
    pub health: Vec<MediaHealth>,
}

impl CallData {
    fn stream(
        &mut self,
        ssrc: u32,
        src: Option<SocketAddr>,
        dst: Option<SocketAddr>,
    ) -> &mut Stream {
        let i = match self
            .streams
            .iter()
            .rposition(|s| s.ssrc == ssrc && s.src == src && s.dst == dst && s.end.is_none())
        {
            Some(i) => i,
            None => {
                self.streams.push(Stream {
                    ssrc,
                    src,
                    dst,
                    ..Default::default()
                });
                self.streams.len() - 1
            }
        };
        &mut self.streams[i]
    }

    pub fn push(&mut self, ev: &Event) {
        match ev {
            Event::Call(c) => self.calls.push(c.clone()),
            Event::RtpInterval(i) => {
                let s = self.stream(i.ssrc, i.src, i.dst);
                s.codec = i.codec.to_string();
                s.intervals.push(i.clone());
            }
            Event::StreamEnd(e) => {
                let s = self.stream(e.ssrc, e.src, e.dst);
                s.codec = e.codec.to_string();
                s.end = Some(e.clone());
            }
            Event::Dtmf(d) => self.dtmf.push(d.clone()),
            Event::MediaHealth(h) => self.health.push(h.clone()),
        }
    }

    /// First and last event time.
    pub fn span(&self) -> (Ts, Ts) {
        let mut lo = Ts(u64::MAX);
        let mut hi = Ts(0);
        let mut see = |t: Ts| {
            lo = lo.min(t);
            hi = hi.max(t);
        };
        self.calls.iter().for_each(|c| see(c.ts));
        for s in &self.streams {
            s.intervals.iter().for_each(|i| see(i.ts));
            if let Some(e) = &s.end {
                see(e.ts);
            }
        }
        if lo > hi {
            return (Ts(0), Ts(0));
        }
        (lo, hi)
    }

    /// Keeps the streams with a second inside the window (RTP without a call).
    pub fn retain_within(&mut self, from: Option<Ts>, to: Option<Ts>) {
        let inside = |t: Ts| from.is_none_or(|f| t >= f) && to.is_none_or(|e| t <= e);
        self.streams
            .retain(|s| s.intervals.iter().any(|i| inside(i.ts)));
    }

    pub fn apply_privacy(&mut self, p: &Privacy) {
        let each = |ev: Event| {
            let mut ev = ev;
            p.apply(&mut ev);
            ev
        };
        for c in &mut self.calls {
            if let Event::Call(x) = each(Event::Call(c.clone())) {
                *c = x;
            }
        }
        for s in &mut self.streams {
            for i in &mut s.intervals {
                if let Event::RtpInterval(x) = each(Event::RtpInterval(i.clone())) {
                    *i = x;
                }
            }
            if let Some(e) = &mut s.end
                && let Event::StreamEnd(x) = each(Event::StreamEnd(e.clone()))
            {
                *e = x;
            }
        }
        for d in &mut self.dtmf {
            if let Event::Dtmf(x) = each(Event::Dtmf(d.clone())) {
                *d = x;
            }
        }
        for h in &mut self.health {
            if let Event::MediaHealth(x) = each(Event::MediaHealth(h.clone())) {
                *h = x;
            }
        }
    }

    /// The call's last event: the final one when there is one.
    pub fn last(&self) -> Option<&CallEvent> {
        self.calls
            .iter()
            .rev()
            .find(|c| c.event.is_final())
            .or(self.calls.last())
    }

    /// The code of the final response that decided the call (answered, failed, cancelled).
    pub fn final_code(&self) -> Option<u16> {
        use crate::track::event::CallEventKind as K;
        self.calls
            .iter()
            .find(|c| matches!(c.event, K::Answered | K::Failed | K::Cancelled))
            .and_then(|c| c.code)
    }

    /// The warnings of the call list: one-way media, capture loss, mirror duplicates.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut w = Vec::new();
        if self
            .health
            .iter()
            .any(|h| h.problem == MediaProblem::OneWayMedia)
        {
            w.push("one-way media");
        }
        if self
            .health
            .iter()
            .any(|h| h.problem == MediaProblem::NoMediaAfterAnswer)
        {
            w.push("no media after answer");
        }
        if self
            .health
            .iter()
            .any(|h| h.problem == MediaProblem::MediaStopped)
        {
            w.push("media stopped");
        }
        if self
            .streams
            .iter()
            .any(|s| s.intervals.iter().any(|i| i.capture_loss))
        {
            w.push("capture loss");
        }
        if self.streams.iter().any(|s| {
            s.end.as_ref().is_some_and(|e| e.duplicates > 0)
                || s.intervals.iter().any(|i| i.duplicates > 0)
        }) {
            w.push("mirror duplicates");
        }
        w
    }
}
