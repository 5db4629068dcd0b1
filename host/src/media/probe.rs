//! Measuring media by its bytes: what a file *is* (not what its name or Content-Type claims), an
//! image's size, and an audio file's duration found by decoding every packet (not guessed from a
//! header that may lie).

use std::io::Cursor;

use symphonia::core::codecs::CODEC_TYPE_NULL;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub width: usize,
    pub height: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// The container found by probing ("wav", "mp3", "m4a").
    pub format: &'static str,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProbeError {
    /// What the bytes look like instead (a name, never the bytes themselves).
    #[error("not a JPEG or PNG image (it looks like {0})")]
    NotJpegOrPng(&'static str),
    #[error("image dimensions unreadable: {0}")]
    BadImage(String),
    #[error("not decodable as MP3, WAV or M4A audio: {0}")]
    NotAudio(String),
}

/// A name for what some bytes are, to say what to fix without quoting them.
fn looks_like(bytes: &[u8]) -> &'static str {
    let text = bytes
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if bytes.is_empty() {
        "nothing: the answer was empty"
    } else if bytes.starts_with(b"GIF8") {
        "a GIF"
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        "a WebP"
    } else if bytes.get(4..12).is_some_and(|b| b.starts_with(b"ftyp")) {
        "an ISO media file (HEIC/AVIF/MP4)"
    } else if bytes.trim_ascii_start().starts_with(b"<") {
        "HTML or XML"
    } else if text {
        "text"
    } else {
        "another binary format"
    }
}

/// Identifies JPEG/PNG by magic bytes and reads the dimensions.
pub fn image_info(bytes: &[u8]) -> Result<ImageInfo, ProbeError> {
    let format = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        ImageFormat::Jpeg
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        ImageFormat::Png
    } else {
        return Err(ProbeError::NotJpegOrPng(looks_like(bytes)));
    };
    let size = imagesize::blob_size(bytes).map_err(|e| ProbeError::BadImage(e.to_string()))?;
    Ok(ImageInfo {
        format,
        width: size.width,
        height: size.height,
    })
}

/// Decodes the whole audio stream and returns its container and exact duration.
pub fn audio_info(bytes: Vec<u8>) -> Result<AudioInfo, ProbeError> {
    let mut frames: u64 = 0;
    let (format, sample_rate) = decode(bytes, |decoded| frames += decoded.frames() as u64)?;
    Ok(AudioInfo {
        format,
        seconds: frames as f64 / f64::from(sample_rate),
    })
}

/// Decoded audio: mono samples in -1.0..=1.0 at `rate` per second.
#[derive(Debug, Clone)]
pub struct Pcm {
    pub rate: u32,
    pub samples: Vec<f32>,
}

impl Pcm {
    /// As a mono 16-bit PCM WAV file.
    pub fn to_wav(&self) -> Vec<u8> {
        let data_len = (self.samples.len() * 2) as u32;
        let mut out = Vec::with_capacity(44 + self.samples.len() * 2);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&self.rate.to_le_bytes());
        out.extend_from_slice(&(self.rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for s in &self.samples {
            let v = (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16;
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// Decodes the whole audio stream into mono samples (channels averaged).
pub fn decode_mono(bytes: Vec<u8>) -> Result<Pcm, ProbeError> {
    use symphonia::core::audio::SampleBuffer;
    let mut samples = Vec::new();
    let (_, rate) = decode(bytes, |decoded| {
        let channels = decoded.spec().channels.count().max(1);
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buffer.copy_interleaved_ref(decoded);
        samples.extend(
            buffer
                .samples()
                .chunks(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
    })?;
    Ok(Pcm { rate, samples })
}

/// Decodes every packet of the audio track, handing each decoded buffer to `each`; returns the
/// container and the sample rate. Fails when nothing decodes.
fn decode(
    bytes: Vec<u8>,
    mut each: impl FnMut(symphonia::core::audio::AudioBufferRef<'_>),
) -> Result<(&'static str, u32), ProbeError> {
    let not_audio = |e: SymphoniaError| ProbeError::NotAudio(e.to_string());
    let Some(format) = container_of(&bytes) else {
        return Err(ProbeError::NotAudio("not an MP3, WAV or M4A file".into()));
    };
    let mut hint = Hint::new();
    hint.with_extension(format);
    let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(not_audio)?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| ProbeError::NotAudio("no audio track".into()))?;
    let track_id = track.id;
    let sample_rate = track
        .codec_params
        .sample_rate
        .ok_or_else(|| ProbeError::NotAudio("unknown sample rate".into()))?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &Default::default())
        .map_err(not_audio)?;
    let mut any = false;
    loop {
        let packet = match reader.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break
            }
            Err(e) => return Err(not_audio(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(decoded) => {
                any |= decoded.frames() > 0;
                each(decoded);
            }
            // A damaged packet is skipped, as players do; the duration counts what plays.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(not_audio(e)),
        }
    }
    if !any {
        return Err(ProbeError::NotAudio("no decodable audio frames".into()));
    }
    Ok((format, sample_rate))
}

/// The container, by magic bytes: RIFF/WAVE, an ISO-BMFF `ftyp` box, or MP3 (ID3 tag or frame
/// sync). `None` for anything else, which is then not accepted even if it decodes.
fn container_of(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        Some("wav")
    } else if bytes.len() >= 8 && &bytes[4..8] == b"ftyp" {
        Some("m4a")
    } else if bytes.starts_with(b"ID3")
        || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0)
    {
        Some("mp3")
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A mono 16-bit PCM WAV of `seconds` of silence.
    pub fn wav(seconds: f64, rate: u32) -> Vec<u8> {
        let samples = vec![0.0; (seconds * rate as f64) as usize];
        Pcm { rate, samples }.to_wav()
    }

    #[test]
    fn measures_wav_duration_by_decoding() {
        let info = audio_info(wav(2.5, 22050)).unwrap();
        assert_eq!(info.format, "wav");
        assert!((info.seconds - 2.5).abs() < 0.001, "{}", info.seconds);
    }

    #[test]
    fn rejects_non_audio() {
        assert!(matches!(
            audio_info(b"hello, world".to_vec()),
            Err(ProbeError::NotAudio(_))
        ));
    }

    #[test]
    fn identifies_images_by_magic_bytes() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&600u32.to_be_bytes());
        png.extend_from_slice(&512u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0]);
        let info = image_info(&png).unwrap();
        assert_eq!(
            (info.format, info.width, info.height),
            (ImageFormat::Png, 600, 512)
        );
        assert_eq!(
            image_info(b"GIF89a......"),
            Err(ProbeError::NotJpegOrPng("a GIF"))
        );
        // What was read is named, never quoted (a local file's first line would be a leak).
        let passwd = image_info(b"root:x:0:0:root:/root:/bin/bash\n").unwrap_err();
        assert_eq!(
            passwd.to_string(),
            "not a JPEG or PNG image (it looks like text)"
        );
    }
}
