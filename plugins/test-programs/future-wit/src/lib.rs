//! Built against `vidhook:plugin@9.0.0` (wit/ here), which the host must refuse by name.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

struct Future;

impl Guest for Future {
    fn plan(
        _content: vidhook::plugin::types::Content,
        _draft: Vec<vidhook::plugin::types::VideoPlan>,
    ) -> Result<vidhook::plugin::types::Decision, vidhook::plugin::types::PluginError> {
        Ok(vidhook::plugin::types::Decision::Skip(
            "from the future".into(),
        ))
    }
}

export!(Future);
