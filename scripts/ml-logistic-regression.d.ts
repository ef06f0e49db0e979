declare module 'ml-logistic-regression' {
  import type { Matrix } from 'ml-matrix';
  export default class LogisticRegression {
    constructor(opts: { numSteps?: number; learningRate?: number });
    /** One-vs-all: classifiers[i] models P(class != i). */
    classifiers: Array<{ weights: Matrix }>;
    train(X: Matrix, Y: Matrix): void;
  }
}
