//! A reader that hands a copy of every byte read through it to a second
//! reader, so pg_dump's output is written to the disk and read back by
//! pg_restore in the same pass.
//!
//! The copy is a bounded queue of chunks: when its reader falls behind,
//! reading through the tee waits (memory stays flat); when its reader is
//! gone, the tee goes on alone. The copy ends where the tee's source ends:
//! at its end, or cut short by an error, which the copy's reader then sees
//! as a stream cut short.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::PollSender;

/// Chunks the copy may hold before reading through the tee waits.
const DEPTH: usize = 16;

/// The reading side of a [`tee`].
pub struct Tee<R> {
    inner: R,
    copy: Option<PollSender<io::Result<Bytes>>>,
}

/// `inner`, and a reader of the same bytes as they are read through it.
pub fn tee<R: AsyncRead + Unpin>(inner: R) -> (Tee<R>, impl AsyncRead + Unpin + Send + 'static) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(DEPTH);
    let copy =
        tokio_util::io::StreamReader::new(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    (
        Tee {
            inner,
            copy: Some(PollSender::new(tx)),
        },
        copy,
    )
}

impl<R: AsyncRead + Unpin> AsyncRead for Tee<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // Room in the copy first, so what is read can always be handed on.
        if let Some(copy) = &mut this.copy {
            if ready!(copy.poll_reserve(cx)).is_err() {
                this.copy = None;
            }
        }
        let before = buf.filled().len();
        let read = ready!(Pin::new(&mut this.inner).poll_read(cx, buf));
        let fresh = &buf.filled()[before..];
        match (&read, this.copy.as_mut()) {
            (Ok(()), Some(copy)) if !fresh.is_empty() => {
                // Reserved above; a reader gone since only ends the copy.
                if copy.send_item(Ok(Bytes::copy_from_slice(fresh))).is_err() {
                    this.copy = None;
                }
            }
            // The end, or an error: the copy ends here too.
            _ => this.copy = None,
        }
        Poll::Ready(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn both_sides_read_every_byte() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (mut first, mut second) = tee(&data[..]);
        let reading = tokio::spawn(async move {
            let mut copied = Vec::new();
            second.read_to_end(&mut copied).await.unwrap();
            copied
        });
        let mut read = Vec::new();
        // Small reads: many more chunks than the queue holds.
        let mut chunk = [0u8; 1000];
        loop {
            let n = first.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            read.extend_from_slice(&chunk[..n]);
        }
        drop(first);
        assert_eq!(read, data);
        assert_eq!(reading.await.unwrap(), data);
    }

    #[tokio::test]
    async fn the_tee_goes_on_when_the_copy_is_dropped() {
        let data = vec![7u8; 100_000];
        let (mut first, second) = tee(&data[..]);
        drop(second);
        let mut read = Vec::new();
        first.read_to_end(&mut read).await.unwrap();
        assert_eq!(read.len(), data.len());
    }

    #[tokio::test]
    async fn a_source_cut_short_ends_the_copy_early() {
        struct Failing(usize);
        impl AsyncRead for Failing {
            fn poll_read(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                if self.0 == 0 {
                    return Poll::Ready(Err(io::Error::other("gone")));
                }
                self.0 -= 1;
                buf.put_slice(b"abc");
                Poll::Ready(Ok(()))
            }
        }
        let (mut first, mut second) = tee(Failing(2));
        let mut read = Vec::new();
        assert!(first.read_to_end(&mut read).await.is_err());
        let mut copied = Vec::new();
        second.read_to_end(&mut copied).await.unwrap();
        assert_eq!(copied, b"abcabc");
    }
}
