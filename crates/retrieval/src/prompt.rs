//! The prompt format of retrieval-augmented questions: [`prompt_with_passages`].

use crate::Hit;

/// What starts each passage line of [`prompt_with_passages`].
pub const PASSAGE_PREFIX: &str = "Passage: ";

/// Puts retrieved passages before a question prompt, as plain text.
///
/// The format, exactly: for each hit in the given order, one line `Passage: <text>\n`, where
/// `<text>` is the hit's text with every run of whitespace (newlines included) replaced by one
/// space and no leading or trailing whitespace; then one empty line (`\n`); then
/// `question_prompt` unchanged. With no hits the result is `question_prompt` itself. Scores and
/// ids are not shown, so the result depends only on the texts and their order.
///
/// ```
/// use retrieval::{prompt_with_passages, Hit};
/// let hits = [
///     Hit { id: 0, score: 2.0, text: "Ilona Varsk was born in Lormet.\nShe studied at Tessa.".into() },
///     Hit { id: 7, score: 1.0, text: "Lormet is in Ardonia.".into() },
/// ];
/// assert_eq!(
///     prompt_with_passages("Question: Where was Ilona Varsk born?\nAnswer:", &hits),
///     "Passage: Ilona Varsk was born in Lormet. She studied at Tessa.\n\
///      Passage: Lormet is in Ardonia.\n\
///      \n\
///      Question: Where was Ilona Varsk born?\nAnswer:"
/// );
/// ```
pub fn prompt_with_passages(question_prompt: &str, hits: &[Hit]) -> String {
    if hits.is_empty() {
        return question_prompt.to_string();
    }
    let mut out = String::new();
    for hit in hits {
        out.push_str(PASSAGE_PREFIX);
        let mut first = true;
        for word in hit.text.split_whitespace() {
            if !first {
                out.push(' ');
            }
            out.push_str(word);
            first = false;
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(question_prompt);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_hits_leaves_the_prompt_alone_and_whitespace_is_collapsed() {
        assert_eq!(prompt_with_passages("Question: q\nAnswer:", &[]), "Question: q\nAnswer:");
        let hit = Hit { id: 3, score: 0.5, text: "  a\r\n\tb  c \n".into() };
        assert_eq!(prompt_with_passages("Q", &[hit]), "Passage: a b c\n\nQ");
    }
}
