//! The frame size warren asks for on its own connections.
//!
//! lapin keeps a receive and a send buffer of 32 frames per connection, sized by the negotiated
//! frame_max and filled with zeros, so resident from the start. At the 128 KiB both RabbitMQ and
//! the embedded broker offer, that is 8 MiB per connection, and every consumer has its own
//! connection: 64 consumers took 545 MB. warren's tasks are a few dozen bytes ("warren <run> <id>
//! <weight>") with two short properties, so the smallest frame AMQP allows (4096 bytes, which
//! RabbitMQ and the embedded broker both accept) carries any task in one body frame and costs
//! 256 KiB of buffers per connection. A larger body would still work: lapin and both brokers
//! cut it into frames.

use lapin::uri::AMQPUri;

/// AMQP's frame-min-size: the least a client may ask for and a server must accept.
pub const FRAME_MAX: u32 = 4096;

/// The URI warren connects with: frame_max set to [`FRAME_MAX`] unless the user's URL names one
/// (`?frame_max=...`), which is then respected as given.
pub fn with_small_frames(uri: &AMQPUri) -> AMQPUri {
    let mut uri = uri.clone();
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> AMQPUri {
        url.parse().expect("a valid URL")
    }

    #[test]
    fn warren_asks_for_small_frames_unless_the_url_says_otherwise() {
        let plain = parse("amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(with_small_frames(&plain).query.frame_max, Some(4096));
        let chosen = parse("amqp://guest:guest@127.0.0.1:5672/%2f?frame_max=131072");
        assert_eq!(with_small_frames(&chosen).query.frame_max, Some(131072));
        // 0 means "the server's value" in AMQP: a user who writes it gets exactly that.
        let zero = parse("amqp://guest:guest@127.0.0.1:5672/%2f?frame_max=0");
        assert_eq!(with_small_frames(&zero).query.frame_max, Some(0));
    }

    #[test]
    fn nothing_else_in_the_url_changes() {
        let url = parse("amqp://u:p@example.org:5673/v?heartbeat=7&channel_max=9");
        let mut expected = url.clone();
        expected.query.frame_max = Some(FRAME_MAX);
        assert_eq!(with_small_frames(&url), expected);
    }
}
