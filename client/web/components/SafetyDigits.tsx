// Sixty digits as twelve groups of five, the way both people read them aloud.
import { Fragment } from 'preact';

export function SafetyDigits({ groups, label }: { groups: string[]; label: string }) {
  return (
    <div class="safety-number" role="group" aria-label={label}>
      {groups.map((g, i) => (
        <Fragment key={i}>
          {i > 0 && ' '}
          <span class="safety-group">{g}</span>
        </Fragment>
      ))}
    </div>
  );
}
