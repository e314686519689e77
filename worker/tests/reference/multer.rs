//! The reference multipart parser for the property test
//! (`tests/multipart_reference.rs`) and the fuzz target
//! `multipart_reference`: multer, the parser behind axum, driven over a
//! whole body. What it yields is what an origin built on it would extract.

/// One field multer read in full: its declared `Content-Type`, its bytes.
pub struct Field {
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// The fields multer reads from `body` under `content_type`, up to its
/// first error (an origin streaming fields to storage has kept those).
pub fn fields(content_type: &str, body: &[u8]) -> Vec<Field> {
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return Vec::new();
    };
    let chunk = bytes::Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(chunk) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    futures_executor::block_on(async {
        let mut out = Vec::new();
        while let Ok(Some(field)) = multipart.next_field().await {
            let content_type = field.content_type().map(|m| m.to_string());
            match field.bytes().await {
                Ok(bytes) => out.push(Field {
                    content_type,
                    bytes: bytes.to_vec(),
                }),
                Err(_) => break,
            }
        }
        out
    })
}
