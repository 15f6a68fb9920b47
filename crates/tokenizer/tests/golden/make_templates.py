"""Chat templates rendered by transformers, for crates/tokenizer/tests/templates.rs.

Each case is a template written in the style of a model family's (the Jinja constructs real
templates use: `namespace`, `messages[::-1]`, `loop.index0`, Python string methods, `tojson`,
`is string`, `raise_exception`, whitespace control), a conversation, optional tools, and the
text transformers' `apply_chat_template` renders. The Rust side must render the same text.

Run from this folder:  pip install transformers && python3 make_templates.py
"""
import json
import os

from transformers.utils.chat_template_utils import render_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))

THINKING_TOOLS = """{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}
{{- '# Tools\\n<tools>' }}
{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}
{{- '\\n</tools><|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
  {%- set index = (messages|length - 1) - loop.index0 %}
  {%- if ns.multi_step_tool and message.role == 'user' and message.content is string and not (message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
    {%- set ns.multi_step_tool = false %}
    {%- set ns.last_query_index = index %}
  {%- endif %}
{%- endfor %}
{%- for message in messages %}
  {%- set content = message.content if message.content is string else '' %}
  {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
  {%- elif message.role == 'assistant' %}
    {%- set reasoning = '' %}
    {%- if message.reasoning_content is string %}
      {%- set reasoning = message.reasoning_content %}
    {%- elif '</think>' in content %}
      {%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
      {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
    {%- endif %}
    {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning) %}
{{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
    {%- else %}
{{- '<|im_start|>assistant\\n' + content }}
    {%- endif %}
    {%- if message.tool_calls %}
      {%- for call in message.tool_calls %}
        {%- if (loop.first and content) or not loop.first %}{{- '\\n' }}{%- endif %}
        {%- if call.function %}{%- set call = call.function %}{%- endif %}
{{- '<tool_call>\\n{"name": "' + call.name + '", "arguments": ' }}
        {%- if call.arguments is string %}{{- call.arguments }}{%- else %}{{- call.arguments | tojson }}{%- endif %}
{{- '}\\n</tool_call>' }}
      {%- endfor %}
    {%- endif %}
{{- '<|im_end|>\\n' }}
  {%- elif message.role == 'tool' %}
    {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
{{- '\\n<tool_response>\\n' + content + '\\n</tool_response>' }}
    {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}
  {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}
{%- endif %}"""

INST = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] | trim + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] | trim + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] | trim + eos_token }}
    {%- endif %}
{%- endfor %}"""

HEADERS = """{{- bos_token }}
{%- for message in messages %}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
{%- set upper = messages | map(attribute='role') | map('upper') | join(',') %}
{%- if messages | length > 3 %}{{- '\\n<!-- ' + upper + ' ' + messages[-1]['content'][:5] + ' -->' }}{%- endif %}"""

# The tools as a request sends them: the Rust side reads their JSON text (`tools_json`), keeping
# each object's keys in the order written, as Python does.
TOOLS = [{"type": "function", "function": {"name": "lookup",
                                           "description": "Facts about a person <by name> & née \"quoted\"",
                                           "parameters": {"type": "object", "properties": {"name": {"type": "string"}},
                                                          "required": ["name"]}}}]

CONVERSATIONS = {
    "plain": [{"role": "system", "content": "Be brief."},
              {"role": "user", "content": "Where was Ilona born?"},
              {"role": "assistant", "content": "  In Lormet.  "},
              {"role": "user", "content": "And when?"}],
    "thinking": [{"role": "user", "content": "Where was Ilona born?"},
                 {"role": "assistant", "content": "<think>\nShe is in the records.\n</think>\n\nIn Lormet."},
                 {"role": "user", "content": "When?"},
                 {"role": "assistant", "content": "<think>\nLook it up.\n</think>\n\nIn 1948."}],
    "tools": [{"role": "system", "content": "Use tools."},
              {"role": "user", "content": "Where was Ilona born?"},
              {"role": "assistant", "content": "",
               "tool_calls": [{"type": "function", "function": {"name": "lookup", "arguments": {"name": "Ilona"}}}]},
              {"role": "tool", "content": "born in Lormet"},
              {"role": "tool", "content": "born 1948"},
              {"role": "assistant", "content": "In Lormet, in 1948."}],
    "bad_order": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
}

CASES = [("thinking_tools", THINKING_TOOLS, "plain", False), ("thinking_tools", THINKING_TOOLS, "thinking", True),
         ("thinking_tools", THINKING_TOOLS, "tools", True), ("inst", INST, "plain", False),
         ("inst", INST, "bad_order", False), ("headers", HEADERS, "plain", True), ("headers", HEADERS, "thinking", False),
         # Extra template variables, as `apply_chat_template(..., enable_thinking=False)` passes them.
         ("thinking_tools", THINKING_TOOLS, "plain", False, {"enable_thinking": False})]


def main():
    out = []
    for name, template, conv, with_tools, *extra in CASES:
        kwargs = extra[0] if extra else {}
        messages = CONVERSATIONS[conv]
        for gen in (False, True):
            case = {"template": name, "conversation": conv, "tools": with_tools, "add_generation_prompt": gen}
            if kwargs:
                case["kwargs"] = kwargs
            try:
                rendered, _ = render_jinja_template(conversations=[messages], chat_template=template,
                                                    tools=TOOLS if with_tools else None,
                                                    add_generation_prompt=gen, bos_token="<s>", eos_token="</s>",
                                                    **kwargs)
                case["rendered"] = rendered[0]
            except Exception as e:  # raise_exception: the Rust side must fail too
                case["error"] = str(e)
            out.append(case)
    with open(os.path.join(HERE, "templates.json"), "w") as f:
        json.dump({"templates": {"thinking_tools": THINKING_TOOLS, "inst": INST, "headers": HEADERS},
                   "conversations": CONVERSATIONS, "tools_json": json.dumps(TOOLS), "cases": out}, f,
                  ensure_ascii=False, indent=1)
    print(len(out), "cases")


if __name__ == "__main__":
    main()
