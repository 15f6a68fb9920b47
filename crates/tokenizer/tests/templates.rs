//! Chat templates in the style of real model families (tests/golden/make_templates.py): the
//! constructs they use (`namespace`, `messages[::-1]`, Python string methods, `tojson`,
//! `is string`, `raise_exception`, whitespace control, `tojson` with Python's separators and no
//! HTML escaping) render exactly as transformers renders them, and a template that raises fails
//! here too; tool schemas keep their keys in the order the request wrote them.

use serde_json::Value;
use tokenizer::template::ChatTemplate;

#[test]
fn templates_render_as_transformers_renders_them() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/templates.json");
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // The tools' JSON text, as a request carries it (keys in the order written).
    let tools_json = golden["tools_json"].as_str().unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    for case in cases {
        let name = case["template"].as_str().unwrap();
        let conv = case["conversation"].as_str().unwrap();
        let gen = case["add_generation_prompt"].as_bool().unwrap();
        let source = golden["templates"][name].as_str().unwrap();
        let t = ChatTemplate::new(source, Some("<s>".into()), Some("</s>".into())).unwrap();
        let messages = golden["conversations"][conv].as_array().unwrap();
        let with_tools = case["tools"].as_bool().unwrap().then_some(tools_json);
        let kwargs = case["kwargs"].as_object();
        let got = t.render_with_tools_json(messages, with_tools, kwargs, gen);
        match (&case["rendered"], &case["error"]) {
            (Value::String(want), _) => {
                assert_eq!(got.as_deref().map_err(|e| e.to_string()), Ok(want.as_str()), "{name} / {conv} / {gen}")
            }
            (_, Value::String(why)) => {
                let e = got.expect_err("transformers raised").to_string();
                assert!(e.contains(why.as_str()), "{name} / {conv}: {e}");
            }
            _ => panic!("a case has neither `rendered` nor `error`"),
        }
    }
}
