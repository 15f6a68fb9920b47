//! Learning-rate schedules as pure functions of the step.
//!
//! Written here rather than taken from burn's schedulers because a pure `lr(step)` needs no
//! saved state to resume exactly, and burn 0.22 has no warmup-stable-decay.

use crate::config::{ScheduleKind, ScheduleSection};

/// Learning rate for optimiser step `step` (0-based) of `total`.
pub fn lr_at(s: &ScheduleSection, peak: f64, step: usize, total: usize) -> f64 {
    let min = peak * s.min_lr_ratio;
    if step < s.warmup_steps {
        // Linear warmup reaching the peak at the last warmup step.
        return peak * (step + 1) as f64 / s.warmup_steps as f64;
    }
    match s.kind {
        ScheduleKind::Constant => peak,
        ScheduleKind::Cosine => {
            let span = (total - s.warmup_steps).max(1) as f64;
            let p = ((step - s.warmup_steps) as f64 / span).min(1.0);
            min + (peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
        ScheduleKind::Wsd => {
            let decay_steps = ((total as f64 * s.decay_fraction).round() as usize).max(1);
            let decay_start = total.saturating_sub(decay_steps).max(s.warmup_steps);
            if step < decay_start {
                peak
            } else {
                let p = ((step - decay_start + 1) as f64 / (total - decay_start).max(1) as f64).min(1.0);
                peak + (min - peak) * p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(kind: ScheduleKind) -> ScheduleSection {
        ScheduleSection { kind, warmup_steps: 10, min_lr_ratio: 0.1, decay_fraction: 0.2 }
    }

    #[test]
    fn shapes() {
        let c = sched(ScheduleKind::Cosine);
        assert!((lr_at(&c, 1.0, 0, 100) - 0.1).abs() < 1e-12);
        assert!((lr_at(&c, 1.0, 9, 100) - 1.0).abs() < 1e-12);
        assert!((lr_at(&c, 1.0, 10, 100) - 1.0).abs() < 1e-12);
        assert!((lr_at(&c, 1.0, 55, 100) - 0.55).abs() < 1e-12);
        assert!((lr_at(&c, 1.0, 100, 100) - 0.1).abs() < 1e-12);
        let w = sched(ScheduleKind::Wsd);
        assert_eq!(lr_at(&w, 1.0, 50, 100), 1.0);
        assert_eq!(lr_at(&w, 1.0, 79, 100), 1.0);
        assert!(lr_at(&w, 1.0, 80, 100) < 1.0);
        assert!((lr_at(&w, 1.0, 99, 100) - 0.1).abs() < 1e-12);
        let k = sched(ScheduleKind::Constant);
        assert_eq!(lr_at(&k, 1.0, 99, 100), 1.0);
        // monotone decay after warmup
        for kind in [ScheduleKind::Cosine, ScheduleKind::Wsd] {
            let s = sched(kind);
            for i in 10..99 {
                assert!(lr_at(&s, 1.0, i + 1, 100) <= lr_at(&s, 1.0, i, 100) + 1e-12);
            }
        }
    }
}
